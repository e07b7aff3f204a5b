// Errors raised by the pure C++ core. The Postgres layer maps Error::Kind to an SQLSTATE
// (src/pg/boundary.cpp); the gateway maps it to an HTTP status.
#pragma once

#include <stdexcept>
#include <string>

namespace powersync {

class Error : public std::runtime_error {
 public:
  enum class Kind {
    InvalidInput,   // the caller's input is wrong (bad rules, bad JSON, bad argument)
    NotSupported,   // valid input using a feature we do not implement
    Internal,       // a bug or broken invariant
  };

  Error(Kind kind, const std::string& message, std::string detail = {}, std::string hint = {})
      : std::runtime_error(message), kind_(kind), detail_(std::move(detail)), hint_(std::move(hint)) {}

  Kind kind() const noexcept { return kind_; }
  const std::string& detail() const noexcept { return detail_; }
  const std::string& hint() const noexcept { return hint_; }

 private:
  Kind kind_;
  std::string detail_;
  std::string hint_;
};

inline Error invalid_input(const std::string& message, std::string detail = {}, std::string hint = {}) {
  return Error(Error::Kind::InvalidInput, message, std::move(detail), std::move(hint));
}
inline Error not_supported(const std::string& message, std::string detail = {}, std::string hint = {}) {
  return Error(Error::Kind::NotSupported, message, std::move(detail), std::move(hint));
}

}  // namespace powersync
