// hiredis 0.14 async contexts driven by a Boost.Asio executor.
//
// hiredis ships adapters for libevent, libev, libuv, ... but not Asio. attach_asio() installs
// the context's event hooks (ev.addRead/delRead/addWrite/delWrite/cleanup) so that readiness
// of the context's socket is awaited with posix::stream_descriptor::async_wait on the given
// executor, which then calls redisAsyncHandleRead/redisAsyncHandleWrite.
//
// Contract:
// - Single-threaded: the executor must never run two of its handlers at once (an io_context
//   run by one thread, or a strand). Every other use of the context (commands,
//   redisAsyncFree) must happen on that same executor, never from another thread.
// - hiredis owns the socket. The adapter wraps the fd only to wait on it; on cleanup it
//   release()s the descriptor (never closes it): hiredis closes the fd in redisFree.
// - The adapter lives exactly as long as the context: hiredis calls cleanup when the context
//   is freed (redisAsyncFree, or by hiredis itself after a connection error) and the adapter
//   deletes itself there. Waits that are still queued at that moment keep only a shared
//   "alive" flag and return without touching the freed context.
// - Interest is persistent, as with hiredis's ae adapter: after addRead the adapter keeps
//   waiting for readability until delRead or cleanup (same for writes).
#pragma once

#include <boost/asio/any_io_executor.hpp>

struct redisAsyncContext;  // hiredis

namespace roam::redis {

// Attaches `context` (fresh from redisAsyncConnect, without an event library) to `executor`.
// Returns false, changing nothing, if an event library is already attached or the context
// has no valid fd (e.g. connect(2) already failed: check context->err first).
bool attach_asio(redisAsyncContext* context, const boost::asio::any_io_executor& executor);

}  // namespace roam::redis
