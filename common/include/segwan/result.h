#pragma once

#include <string>
#include <utility>
#include <variant>

namespace segwan {

// What went wrong: a message for people and, for bad input, the field it is about
// ("slice.remotes[1].segments[0]"). `code` is an errno value when the kernel said no.
struct Error {
  std::string message;
  std::string field;
  int code = 0;

  std::string ToString() const { return field.empty() ? message : field + ": " + message; }
};

inline Error FieldError(std::string field, std::string message) {
  return Error{std::move(message), std::move(field), 0};
}

// A value or an Error.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Success or an Error.
class Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  static Status Ok() { return Status(); }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace segwan
