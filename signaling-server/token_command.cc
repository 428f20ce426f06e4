#include "signaling-server/token_command.h"

#include <chrono>
#include <iostream>

#include "common/auth/jwt.h"
#include "common/util/bytes.h"

namespace roam::signaling {

int run_token_command(const TokenCommand& command) {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  auto token = auth::jwt::mint(as_bytes(command.jwt_secret), command.peer, command.audience, now,
                               std::chrono::seconds(command.ttl_seconds));
  if (!token) {
    std::cerr << "roam-signaling token: " << auth::jwt::describe(token.error()) << "\n";
    return 2;
  }
  std::cout << *token << "\n";
  return 0;
}

}  // namespace roam::signaling
