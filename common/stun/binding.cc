#include "common/stun/binding.h"

namespace roam::stun {

Bytes make_binding_request(const TransactionId& id, std::string_view software) {
  MessageBuilder b(Method::kBinding, Class::kRequest, id);
  if (!software.empty()) b.add_string(attr::kSoftware, software);
  return b.finish(nullptr, Integrity::kNone, /*fingerprint=*/true);
}

expected<SocketAddress, std::string> binding_result(const Message& response,
                                                    const TransactionId& id) {
  if (response.transaction_id() != id || response.method() != Method::kBinding) {
    return unexpected(std::string("not a response to this Binding request"));
  }
  if (response.cls() == Class::kError) {
    auto e = response.error_code();
    return unexpected("Binding error " + (e ? std::to_string(e->code) + " " + e->reason
                                            : std::string("without ERROR-CODE")));
  }
  if (response.cls() != Class::kSuccess) return unexpected(std::string("not a response"));
  if (auto a = response.xor_address(attr::kXorMappedAddress)) return *a;
  if (auto a = response.address(attr::kMappedAddress)) return *a;
  return unexpected(std::string("Binding success without a mapped address"));
}

}  // namespace roam::stun
