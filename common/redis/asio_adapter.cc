#include "common/redis/asio_adapter.h"

#include <memory>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <hiredis/async.h>

namespace roam::redis {
namespace {

namespace asio = boost::asio;
using Descriptor = asio::posix::stream_descriptor;

class Adapter {
 public:
  Adapter(redisAsyncContext* context, const asio::any_io_executor& executor)
      : context_(context), descriptor_(executor, context->c.fd) {}

  static void add_read(void* self) { static_cast<Adapter*>(self)->want(kRead, true); }
  static void del_read(void* self) { static_cast<Adapter*>(self)->want(kRead, false); }
  static void add_write(void* self) { static_cast<Adapter*>(self)->want(kWrite, true); }
  static void del_write(void* self) { static_cast<Adapter*>(self)->want(kWrite, false); }
  static void cleanup(void* self) { static_cast<Adapter*>(self)->detach(); }

 private:
  enum Direction { kRead = 0, kWrite = 1 };

  void want(Direction d, bool on) {
    wanted_[d] = on;
    if (on) arm(d);
  }

  void arm(Direction d) {
    if (waiting_[d] || !wanted_[d]) return;
    waiting_[d] = true;
    auto type = d == kRead ? Descriptor::wait_read : Descriptor::wait_write;
    // The handler checks `alive` before touching `this`: hiredis may have freed the context
    // (and with it this adapter) while the wait was queued.
    descriptor_.async_wait(type, [this, d, alive = alive_](const boost::system::error_code& ec) {
      if (!*alive) return;
      waiting_[d] = false;
      if (ec == asio::error::operation_aborted) return;
      if (!wanted_[d]) return;
      // Other errors (EPOLLERR/HUP are reported as readiness anyway) are left for hiredis to
      // discover on its read/write.
      if (d == kRead) {
        redisAsyncHandleRead(context_);
      } else {
        redisAsyncHandleWrite(context_);
      }
      // The call above may have freed the context and deleted this adapter.
      if (!*alive) return;
      arm(d);
    });
  }

  // hiredis is about to free the context (and close the fd).
  void detach() {
    *alive_ = false;
    context_->ev.addRead = nullptr;
    context_->ev.delRead = nullptr;
    context_->ev.addWrite = nullptr;
    context_->ev.delWrite = nullptr;
    context_->ev.cleanup = nullptr;
    context_->ev.data = nullptr;
    // release(): cancels the queued waits (they see alive == false) and hands the fd back
    // without closing it; hiredis closes it in redisFree.
    descriptor_.release();
    delete this;
  }

  redisAsyncContext* context_;
  Descriptor descriptor_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool wanted_[2] = {false, false};
  bool waiting_[2] = {false, false};
};

}  // namespace

bool attach_asio(redisAsyncContext* context, const asio::any_io_executor& executor) {
  if (context == nullptr || context->ev.data != nullptr || context->c.fd < 0) return false;
  Adapter* adapter = nullptr;
  try {
    adapter = new Adapter(context, executor);  // registers the fd with the reactor
  } catch (const boost::system::system_error&) {
    return false;
  }
  context->ev.addRead = &Adapter::add_read;
  context->ev.delRead = &Adapter::del_read;
  context->ev.addWrite = &Adapter::add_write;
  context->ev.delWrite = &Adapter::del_write;
  context->ev.cleanup = &Adapter::cleanup;
  context->ev.data = adapter;
  return true;
}

}  // namespace roam::redis
