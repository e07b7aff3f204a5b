// Small SPI helpers for the replication worker: prepared statements kept for the process, parameter
// datums built from C++ values, results copied out into C++ values. Every call may throw PgError.
#pragma once

extern "C" {
#include "postgres.h"
#include "executor/spi.h"
}

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "powersync/pg/boundary.h"

namespace powersync::pg::spi {

// A statement prepared on first use and kept (SPI_keepplan) for the life of the process.
class Statement {
 public:
  Statement(const char* sql, std::vector<Oid> types) : sql_(sql), types_(std::move(types)) {}
  // Executes with the given parameter datums (nulls: ' ' / 'n' per parameter, nullptr = none null).
  // Returns the number of rows processed; SPI_tuptable holds the result until the next SPI call.
  uint64_t run(const Datum* values, const char* nulls = nullptr);

 private:
  const char* sql_;
  std::vector<Oid> types_;
  SPIPlanPtr plan_ = nullptr;
};

// Runs SQL without parameters; returns the number of rows processed.
uint64_t exec(const char* sql);
uint64_t exec(const std::string& sql);

// Frees the current SPI_tuptable (results of a long round would otherwise pile up until SPI_finish).
void release();

// Accessors for the current SPI_tuptable (row and col are 0-based).
bool is_null(uint64_t row, int col);
std::optional<std::string> text(uint64_t row, int col);   // text output of any column
std::optional<std::string> bytes(uint64_t row, int col);  // bytea/text column, raw bytes
int64_t int64_at(uint64_t row, int col, int64_t if_null = 0);  // int2/int4/int8/oid column
bool bool_at(uint64_t row, int col);
uint64_t lsn_at(uint64_t row, int col);  // pg_lsn column, 0 if null

// Parameter datums, palloc'd in the current memory context.
Datum text_datum(const std::string& s);
Datum bytea_datum(const std::string& s);
Datum text_array(const std::vector<std::string>& items, const std::vector<bool>* nulls = nullptr);
Datum bytea_array(const std::vector<std::string>& items, const std::vector<bool>* nulls = nullptr);
Datum int4_array(const std::vector<int32_t>& items);
Datum int8_array(const std::vector<int64_t>& items, const std::vector<bool>* nulls = nullptr);

std::string lsn_text(uint64_t lsn);  // "X/Y"

}  // namespace powersync::pg::spi
