// Keep-alive of one connection, ticked every idle_timeout / 2. Sans-I/O: the caller samples the
// connection's receive counter at each tick and acts on the answer.
//
// Policy (docs/signaling-protocol.md "Limits"): a tick that finds no traffic since the previous
// one sends a ping (RFC 6455 §5.5.2; the client's pong is traffic); the next tick without traffic
// closes the connection. A silent client is pinged after idle/2 to idle of silence and closed
// idle/2 after that ping.
//
// Why not Beast's own idle timeout: it re-arms a timer on every read (a cancel, an aborted
// handler and a timer-heap insertion per message), and its timeout handler, when it already
// fired but has not run yet, closes the socket of a connection that has just begun its closing
// handshake (status "closing" reads as a closing-handshake timeout). At shutdown that cut the
// connections whose idle ping fell due in the same moment: their close reply met a reset.
#pragma once

#include <cstdint>

namespace roam::signaling {

class KeepAlive {
 public:
  enum class Action {
    kNone,     // traffic since the last tick (or the ping due is still the last one, unwritten)
    kPing,     // silent for a whole tick: send a ping, then call on_ping_written()
    kTimeOut,  // silent for the tick after that too: close
  };
  // `receives`: how many reads so far brought bytes from the client (a counter that only grows).
  // While the last ping is not written, no second one is queued behind it (a silent client still
  // times out on the next tick).
  Action on_tick(std::uint64_t receives);
  void on_ping_written() { ping_in_flight_ = false; }

 private:
  std::uint64_t receives_seen_ = 0;
  bool pinged_ = false;          // this silence has had its ping
  bool ping_in_flight_ = false;  // a ping was asked for and is not written yet
};

}  // namespace roam::signaling
