#include "common/redis/subscriber.h"

#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include <boost/asio/use_awaitable.hpp>
#include <hiredis/async.h>

namespace roam::redis {

namespace asio = boost::asio;

namespace {

// Names per SUBSCRIBE/PSUBSCRIBE command when re-subscribing a large set.
constexpr std::size_t kNamesPerCommand = 256;

std::optional<std::string_view> element(const redisReply* reply, std::size_t i) {
  if (i >= reply->elements) return std::nullopt;
  const redisReply* e = reply->element[i];
  if (e == nullptr || (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS)) {
    return std::nullopt;
  }
  return std::string_view(e->str, e->len);
}

}  // namespace

class Subscriber::Impl final : public detail::Connection {
 public:
  Impl(asio::any_io_executor executor, Options options, MessageHandler on_message)
      : Connection(std::move(executor), std::move(options)), on_message_(std::move(on_message)) {}
  ~Impl() override { stop(); }

  VoidResult add(bool pattern, std::string name);
  void remove(bool pattern, const std::string& name);
  std::size_t size() const { return channels_.size() + patterns_.size(); }

 private:
  // name -> confirmed by the server on the current connection
  using Set = std::map<std::string, bool, std::less<>>;

  static void on_push(redisAsyncContext* context, void* reply, void* privdata);
  Set& set(bool pattern) { return pattern ? patterns_ : channels_; }
  void send(std::string_view verb, const std::vector<const std::string*>& names);
  void confirm(bool pattern, const std::string& name, std::uint64_t generation);
  void deliver(const Message& message);
  void reset_confirmations();

  void on_connected() override;
  void on_disconnected() override { reset_confirmations(); }
  bool synced() const override { return unconfirmed_ == 0; }

  MessageHandler on_message_;
  Set channels_;
  Set patterns_;
  std::size_t unconfirmed_ = 0;
};

VoidResult Subscriber::Impl::add(bool pattern, std::string name) {
  if (name.empty()) {
    return roam::unexpected(Error{Errc::kInvalidArgument, "empty channel or pattern"});
  }
  auto& names = set(pattern);
  if (names.contains(name)) return {};
  if (size() >= options().max_subscriptions) {
    return roam::unexpected(Error{
        Errc::kInvalidArgument,
        std::to_string(size()) + " subscriptions already " +
            "(Options::max_subscriptions = " + std::to_string(options().max_subscriptions) + ")"});
  }
  auto it = names.emplace(std::move(name), false).first;
  ++unconfirmed_;
  if (connected()) send(pattern ? "PSUBSCRIBE" : "SUBSCRIBE", {&it->first});
  return {};
}

void Subscriber::Impl::remove(bool pattern, const std::string& name) {
  auto& names = set(pattern);
  auto it = names.find(name);
  if (it == names.end()) return;
  if (!it->second) --unconfirmed_;
  if (connected()) send(pattern ? "PUNSUBSCRIBE" : "UNSUBSCRIBE", {&it->first});
  names.erase(it);
  // The remaining set may be fully confirmed now; announce from a posted task, not from
  // inside this call.
  post_checked<Impl>([](Impl& s) { s.update_ready(); });
}

void Subscriber::Impl::send(std::string_view verb, const std::vector<const std::string*>& names) {
  if (context() == nullptr || names.empty()) return;
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (std::size_t start = 0; start < names.size(); start += kNamesPerCommand) {
    auto end = std::min(names.size(), start + kNamesPerCommand);
    argv.assign(1, verb.data());
    lengths.assign(1, verb.size());
    for (auto i = start; i < end; ++i) {
      argv.push_back(names[i]->data());
      lengths.push_back(names[i]->size());
    }
    // hiredis registers on_push per channel/pattern; it is called for the confirmation and
    // for every message (and once with NULL when the context is freed).
    redisAsyncCommandArgv(context(), &Impl::on_push, this, static_cast<int>(argv.size()),
                          argv.data(), lengths.data());
  }
}

void Subscriber::Impl::reset_confirmations() {
  for (auto& [name, confirmed] : channels_)
    confirmed = false;
  for (auto& [name, confirmed] : patterns_)
    confirmed = false;
  unconfirmed_ = size();
}

void Subscriber::Impl::on_connected() {
  reset_confirmations();
  std::vector<const std::string*> names;
  for (const auto& [name, confirmed] : channels_)
    names.push_back(&name);
  send("SUBSCRIBE", names);
  names.clear();
  for (const auto& [name, confirmed] : patterns_)
    names.push_back(&name);
  send("PSUBSCRIBE", names);
}

void Subscriber::Impl::confirm(bool pattern, const std::string& name, std::uint64_t gen) {
  if (gen != generation() || !connected()) return;  // from an older connection
  auto& names = set(pattern);
  auto it = names.find(name);
  if (it == names.end() || it->second) return;
  it->second = true;
  --unconfirmed_;
  update_ready();
}

void Subscriber::Impl::deliver(const Message& message) {
  const auto& names = message.pattern.empty() ? channels_ : patterns_;
  const auto& key = message.pattern.empty() ? message.channel : message.pattern;
  if (!names.contains(key)) return;  // unsubscribed meanwhile
  if (on_message_) on_message_(message);
}

// hiredis callback: copy what is needed, post, return. Never call user code from here.
void Subscriber::Impl::on_push(redisAsyncContext* /*context*/, void* r, void* privdata) {
  auto* self = static_cast<Impl*>(privdata);
  auto* reply = static_cast<const redisReply*>(r);
  if (reply == nullptr || self->stopped() || reply->type != REDIS_REPLY_ARRAY) return;
  auto kind = element(reply, 0);
  if (!kind) return;
  if (*kind == "message") {
    auto channel = element(reply, 1);
    auto payload = element(reply, 2);
    if (!channel || !payload) return;
    Message m{std::string(*channel), {}, std::string(*payload)};
    self->post_checked<Impl>([m = std::move(m)](Impl& s) { s.deliver(m); });
  } else if (*kind == "pmessage") {
    auto pattern = element(reply, 1);
    auto channel = element(reply, 2);
    auto payload = element(reply, 3);
    if (!pattern || !channel || !payload) return;
    Message m{std::string(*channel), std::string(*pattern), std::string(*payload)};
    self->post_checked<Impl>([m = std::move(m)](Impl& s) { s.deliver(m); });
  } else if (*kind == "subscribe" || *kind == "psubscribe") {
    auto name = element(reply, 1);
    if (!name) return;
    bool pattern = *kind == "psubscribe";
    auto gen = self->generation();
    self->post_checked<Impl>(
        [pattern, gen, name = std::string(*name)](Impl& s) { s.confirm(pattern, name, gen); });
  }
  // unsubscribe/punsubscribe confirmations need no action: the set changed already.
}

Subscriber::Subscriber(executor_type executor, Options options, MessageHandler on_message)
    : executor_(executor),
      impl_(
          std::make_shared<Impl>(std::move(executor), std::move(options), std::move(on_message))) {}

Subscriber::~Subscriber() {
  impl_->stop();
}

void Subscriber::set_observer(ConnectionObserver observer) {
  impl_->set_observer(std::move(observer));
}
void Subscriber::start() {
  impl_->start();
}
VoidResult Subscriber::subscribe(std::string channel) {
  return impl_->add(false, std::move(channel));
}
VoidResult Subscriber::psubscribe(std::string pattern) {
  return impl_->add(true, std::move(pattern));
}
void Subscriber::unsubscribe(const std::string& channel) {
  impl_->remove(false, channel);
}
void Subscriber::punsubscribe(const std::string& pattern) {
  impl_->remove(true, pattern);
}
bool Subscriber::connected() const {
  return impl_->connected();
}
bool Subscriber::synced() const {
  return impl_->ready();
}
std::size_t Subscriber::subscriptions() const {
  return impl_->size();
}

void Subscriber::wait_synced(Duration timeout, detail::Completion<VoidResult> done) {
  impl_->wait_ready(timeout, std::move(done));
}

asio::awaitable<VoidResult> Subscriber::wait_synced(Duration timeout) {
  co_return co_await async_wait_synced(timeout, asio::use_awaitable);
}

}  // namespace roam::redis
