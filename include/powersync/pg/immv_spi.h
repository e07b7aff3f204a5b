// Small SPI helpers for the IMMV code: a connection scope and statement runners that turn Postgres
// errors into PgError (see boundary.h).
#pragma once

#include <exception>
#include <string>

#include "powersync/pg/boundary.h"

extern "C" {
#include "executor/spi.h"
}

namespace powersync::pg::immv {

// SPI_connect on entry, SPI_finish on normal exit. While an exception unwinds no Postgres call is
// made: the transaction abort that follows releases the connection.
class SpiConnection {
 public:
  SpiConnection() : exceptions_(std::uncaught_exceptions()) {
    pg_call([] {
      if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    });
  }
  ~SpiConnection() {
    if (std::uncaught_exceptions() == exceptions_) pg_call([] { SPI_finish(); });
  }
  SpiConnection(const SpiConnection&) = delete;
  SpiConnection& operator=(const SpiConnection&) = delete;

 private:
  int exceptions_;
};

// Runs one statement; returns the rows it processed.
uint64 spi_exec(const std::string& sql);
// Runs a query; returns the first column of its first row as text ("" when no row or NULL).
std::string query_one(const std::string& sql);
// Schema-qualified, quoted name of a relation.
std::string qualified_name(Oid relid);

}  // namespace powersync::pg::immv
