// roam::expected — std::expected where the compiler provides it.
//
// GCC 12 in C++23 mode has std::expected. clang 14 (the only clang with libFuzzer in Debian 12)
// cannot use libstdc++'s <expected> (it lacks P0848 conditionally-trivial special members), so
// fuzz builds get a minimal replacement with the same interface subset. Production and test
// builds always use std::expected.
#pragma once

#include <version>

#if defined(__cpp_lib_expected)
#include <expected>

namespace roam {
using std::expected;
using std::unexpected;
}  // namespace roam

#else
#include <cstdlib>
#include <type_traits>
#include <utility>
#include <variant>

namespace roam {

template <class E>
class unexpected {
 public:
  explicit unexpected(E error) : error_(std::move(error)) {}
  const E& error() const& { return error_; }
  E& error() & { return error_; }

 private:
  E error_;
};
template <class E>
unexpected(E) -> unexpected<E>;

template <class T, class E>
class expected {
 public:
  using value_type = T;
  using error_type = E;

  expected() requires std::is_default_constructible_v<T> : v_(std::in_place_index<0>) {}
  template <class U = T>
  requires std::is_constructible_v<T, U&&> &&
      (!std::is_same_v<std::remove_cvref_t<U>, expected>)expected(U&& value)
      : v_(std::in_place_index<0>, std::forward<U>(value)) {}
  template <class G>
  expected(const unexpected<G>& u) : v_(std::in_place_index<1>, u.error()) {}
  template <class G>
  expected(unexpected<G>&& u) : v_(std::in_place_index<1>, std::move(u.error())) {}

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return check(), std::get<0>(v_); }
  const T& value() const& { return check(), std::get<0>(v_); }
  T&& value() && { return check(), std::get<0>(std::move(v_)); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const E& error() const& { return std::get<1>(v_); }
  E& error() & { return std::get<1>(v_); }
  template <class U>
  T value_or(U&& other) const& {
    return has_value() ? std::get<0>(v_) : static_cast<T>(std::forward<U>(other));
  }

 private:
  void check() const {
    if (!has_value()) std::abort();
  }
  std::variant<T, E> v_;
};

template <class E>
class expected<void, E> {
 public:
  using value_type = void;
  using error_type = E;

  expected() = default;
  template <class G>
  expected(const unexpected<G>& u) : error_(u.error()), failed_(true) {}
  template <class G>
  expected(unexpected<G>&& u) : error_(std::move(u.error())), failed_(true) {}

  bool has_value() const { return !failed_; }
  explicit operator bool() const { return !failed_; }
  void value() const {
    if (failed_) std::abort();
  }
  const E& error() const& { return error_; }

 private:
  E error_{};
  bool failed_ = false;
};

}  // namespace roam
#endif
