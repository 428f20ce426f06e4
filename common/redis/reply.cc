#include "common/redis/reply.h"

#include <cstdio>

#include <hiredis/hiredis.h>

namespace roam::redis {

std::string_view to_string(Errc code) {
  switch (code) {
    case Errc::kNotConnected:
      return "not connected";
    case Errc::kTimeout:
      return "timeout";
    case Errc::kConnectionLost:
      return "connection lost";
    case Errc::kServerError:
      return "server error";
    case Errc::kTooManyInFlight:
      return "too many commands in flight";
    case Errc::kReplyTooLarge:
      return "reply too large";
    case Errc::kInvalidArgument:
      return "invalid argument";
    case Errc::kConnectFailed:
      return "connect failed";
    case Errc::kShutdown:
      return "shut down";
  }
  return "unknown";
}

std::string to_string(const Error& error) {
  std::string out(to_string(error.code));
  if (!error.message.empty()) {
    out += ": ";
    out += error.message;
  }
  return out;
}

namespace {

void append_escaped(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  out += '"';
}

void render(std::string& out, const Reply& r) {
  struct Visitor {
    std::string& out;
    void operator()(const Nil&) { out += "(nil)"; }
    void operator()(std::int64_t v) { out += "(integer) " + std::to_string(v); }
    void operator()(const std::string& s) { append_escaped(out, s); }
    void operator()(const Status& s) { out += s.text; }
    void operator()(const ErrorReply& e) { out += "(error) " + e.text; }
    void operator()(const Reply::Array& a) {
      out += '[';
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (i) out += ", ";
        render(out, a[i]);
      }
      out += ']';
    }
  };
  std::visit(Visitor{out}, r.value());
}

struct Budget {
  const ReplyLimits& limits;
  std::size_t elements = 0;
  std::size_t bytes = 0;
};

roam::expected<Reply, Error> copy(const redisReply* r, std::size_t depth, Budget& budget) {
  auto too_large = [](std::string what) {
    return roam::unexpected(Error{Errc::kReplyTooLarge, std::move(what)});
  };
  switch (r->type) {
    case REDIS_REPLY_NIL:
      return Reply{};
    case REDIS_REPLY_INTEGER:
      return Reply{static_cast<std::int64_t>(r->integer)};
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: {
      budget.bytes += r->len;
      if (budget.bytes > budget.limits.max_bytes) {
        return too_large("more than " + std::to_string(budget.limits.max_bytes) +
                         " string bytes (ReplyLimits::max_bytes)");
      }
      std::string s(r->str, r->len);
      if (r->type == REDIS_REPLY_STRING) return Reply{std::move(s)};
      if (r->type == REDIS_REPLY_STATUS) return Reply{Status{std::move(s)}};
      return Reply{ErrorReply{std::move(s)}};
    }
    case REDIS_REPLY_ARRAY: {
      if (depth + 1 > budget.limits.max_depth) {
        return too_large("arrays nested deeper than " + std::to_string(budget.limits.max_depth) +
                         " (ReplyLimits::max_depth)");
      }
      budget.elements += r->elements;
      if (budget.elements > budget.limits.max_elements) {
        return too_large("more than " + std::to_string(budget.limits.max_elements) +
                         " array elements (ReplyLimits::max_elements)");
      }
      Reply::Array items;
      items.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) {
        auto item = copy(r->element[i], depth + 1, budget);
        if (!item) return roam::unexpected(std::move(item.error()));
        items.push_back(std::move(*item));
      }
      return Reply{std::move(items)};
    }
    default:
      return roam::unexpected(
          Error{Errc::kConnectionLost, "unknown reply type " + std::to_string(r->type)});
  }
}

}  // namespace

std::string Reply::debug_string() const {
  std::string out;
  render(out, *this);
  return out;
}

Result convert_reply(const redisReply* reply, const ReplyLimits& limits) {
  if (reply == nullptr) {
    return roam::unexpected(Error{Errc::kConnectionLost, "connection closed before the reply"});
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    return roam::unexpected(Error{Errc::kServerError, std::string(reply->str, reply->len)});
  }
  Budget budget{limits};
  return copy(reply, 0, budget);
}

}  // namespace roam::redis
