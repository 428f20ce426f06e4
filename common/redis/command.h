// `co_await redis::run(client, "HSET", key, "field", value)`: builds the argv outside the
// coroutine, which sidesteps GCC 12's "array used as initializer" bug with braced lists inside
// co_await expressions (notes/platform.md).
#pragma once

#include <string>
#include <utility>

#include "common/redis/client.h"

namespace roam::redis {

template <class... Args>
boost::asio::awaitable<Result> run(Client& client, Args&&... args) {
  return client.command(Command{std::string(std::forward<Args>(args))...});
}

}  // namespace roam::redis
