// The C++/Postgres boundary: run Postgres calls from C++ (pg_call) and C++ from Postgres (pg_entry)
// so that no C++ exception reaches Postgres and no longjmp skips a live C++ destructor.
//
// Rules:
//  * Every SQL-callable function body is `return powersync::pg::pg_entry([&] { ... });`.
//  * Inside C++ code, a Postgres call that may ereport goes through pg_call([&] { ... }). The lambda
//    body holds only Postgres calls and trivially destructible locals.
//  * After a PgError is thrown, make no further Postgres calls: unwind to pg_entry, which re-raises
//    the original error (same SQLSTATE, message, detail) once every C++ object is gone.
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/elog.h"
}

#include <exception>
#include <type_traits>
#include <utility>

#include "powersync/error.h"

namespace powersync::pg {

// A Postgres error caught inside C++ code. Owns a copy of the ErrorData (palloc'd in the memory
// context that was current when the call started).
class PgError : public std::exception {
 public:
  explicit PgError(ErrorData* data) : data_(data) {}
  const char* what() const noexcept override { return data_ && data_->message ? data_->message : "postgres error"; }
  ErrorData* release() noexcept { ErrorData* d = data_; data_ = nullptr; return d; }
  ErrorData* data() const noexcept { return data_; }

 private:
  ErrorData* data_;
};

// Runs fn (Postgres calls only) under PG_TRY; an ereport becomes a thrown PgError.
template <typename F>
void pg_call_void(F&& fn) {
  MemoryContext caller_context = CurrentMemoryContext;
  ErrorData* volatile caught = nullptr;
  PG_TRY();
  { fn(); }
  PG_CATCH();
  {
    MemoryContextSwitchTo(caller_context);
    caught = CopyErrorData();
    FlushErrorState();
  }
  PG_END_TRY();
  if (caught) throw PgError(caught);
}

// As pg_call_void, returning fn's (trivially copyable) result: a Datum, a pointer, a number.
template <typename F>
auto pg_call(F&& fn) -> decltype(fn()) {
  using R = decltype(fn());
  if constexpr (std::is_void_v<R>) {
    pg_call_void(std::forward<F>(fn));
  } else {
    static_assert(std::is_trivially_copyable_v<R>, "pg_call results must be trivially copyable (Datum, pointers, ints)");
    R result{};
    pg_call_void([&] { result = fn(); });
    return result;
  }
}

// Raises the pending error as ereport(ERROR). Never returns. Defined in src/pg/boundary.cpp.
[[noreturn]] void raise_pending(ErrorData* pg_error, int sqlstate, const char* message, const char* detail,
                                const char* hint);

// Maps a core error kind to an SQLSTATE.
int sqlstate_for(Error::Kind kind);

// Runs an SQL-callable function body. Any exception is turned into ereport(ERROR) after the body's
// C++ objects are destroyed: a PgError is re-thrown as the original Postgres error, a powersync::Error
// gets the SQLSTATE of its kind, anything else is an internal error.
template <typename F>
Datum pg_entry(F&& body) {
  ErrorData* pg_error = nullptr;
  int sqlstate = 0;
  char* message = nullptr;
  char* detail = nullptr;
  char* hint = nullptr;
  try {
    return body();
  } catch (PgError& e) {
    pg_error = e.release();
  } catch (const Error& e) {
    sqlstate = sqlstate_for(e.kind());
    message = pstrdup(e.what());
    if (!e.detail().empty()) detail = pstrdup(e.detail().c_str());
    if (!e.hint().empty()) hint = pstrdup(e.hint().c_str());
  } catch (const std::bad_alloc&) {
    sqlstate = ERRCODE_OUT_OF_MEMORY;
    message = pstrdup("out of memory in powersync_pg");
  } catch (const std::exception& e) {
    sqlstate = ERRCODE_INTERNAL_ERROR;
    message = pstrdup(e.what());
  } catch (...) {
    sqlstate = ERRCODE_INTERNAL_ERROR;
    message = pstrdup("unknown C++ exception in powersync_pg");
  }
  raise_pending(pg_error, sqlstate, message, detail, hint);
}

}  // namespace powersync::pg
