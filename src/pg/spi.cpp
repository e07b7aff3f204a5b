// SPI helpers for the replication worker (see include/powersync/pg/spi.h).
#include "powersync/pg/spi.h"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
}

#include <cstdio>

namespace powersync::pg::spi {
namespace {

void check(int rc, const char* sql) {
  if (rc < 0) throw Error(Error::Kind::Internal, std::string("SPI failed (") + SPI_result_code_string(rc) + "): " + sql);
}

Datum array_of(const std::vector<Datum>& elems, const std::vector<bool>* nulls, Oid type, int16 len, bool byval,
               char align) {
  int n = static_cast<int>(elems.size());
  int dims[1] = {n};
  int lbs[1] = {1};
  const Datum* data = elems.data();
  return pg_call([&] {
    bool* null_flags = static_cast<bool*>(palloc(sizeof(bool) * (n > 0 ? n : 1)));
    for (int i = 0; i < n; ++i) null_flags[i] = nulls && (*nulls)[i];
    return PointerGetDatum(construct_md_array(const_cast<Datum*>(data), null_flags, 1, dims, lbs, type, len, byval, align));
  });
}

Datum varlena_datum(const std::string& s) {
  const char* p = s.data();
  size_t n = s.size();
  return pg_call([&] {
    struct varlena* t = static_cast<struct varlena*>(palloc(VARHDRSZ + n));
    SET_VARSIZE(t, VARHDRSZ + n);
    memcpy(VARDATA(t), p, n);
    return PointerGetDatum(t);
  });
}

Datum varlena_array(const std::vector<std::string>& items, const std::vector<bool>* nulls, Oid type) {
  std::vector<Datum> elems;
  elems.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i)
    elems.push_back(nulls && (*nulls)[i] ? Datum(0) : varlena_datum(items[i]));
  return array_of(elems, nulls, type, -1, false, TYPALIGN_INT);
}

}  // namespace

uint64_t Statement::run(const Datum* values, const char* nulls) {
  if (plan_ == nullptr) {
    const char* sql = sql_;
    Oid* types = types_.data();
    int n = static_cast<int>(types_.size());
    plan_ = pg_call([&] {
      SPIPlanPtr p = SPI_prepare(sql, n, types);
      if (p != nullptr) SPI_keepplan(p);
      return p;
    });
    if (plan_ == nullptr) check(SPI_result, sql_);
  }
  SPIPlanPtr plan = plan_;
  MemoryContext caller = CurrentMemoryContext;
  int rc = pg_call([&] { return SPI_execute_plan(plan, const_cast<Datum*>(values), nulls, false, 0); });
  // SPI returns in its procedure context, which lives until SPI_finish: back to the caller's (a flush
  // context, say) so that what is read from the result is freed with it, not kept for the whole round.
  MemoryContextSwitchTo(caller);
  check(rc, sql_);
  return SPI_processed;
}

uint64_t exec(const char* sql) {
  MemoryContext caller = CurrentMemoryContext;
  int rc = pg_call([&] { return SPI_execute(sql, false, 0); });
  MemoryContextSwitchTo(caller);
  check(rc, sql);
  return SPI_processed;
}

uint64_t exec(const std::string& sql) { return exec(sql.c_str()); }

void release() {
  if (SPI_tuptable != nullptr) pg_call([&] { SPI_freetuptable(SPI_tuptable); });
  SPI_tuptable = nullptr;
}

bool is_null(uint64_t row, int col) {
  bool isnull = false;
  pg_call([&] { SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col + 1, &isnull); });
  return isnull;
}

std::optional<std::string> text(uint64_t row, int col) {
  char* s = pg_call([&] { return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col + 1); });
  if (s == nullptr) return std::nullopt;
  std::string out(s);
  pfree(s);
  return out;
}

std::optional<std::string> bytes(uint64_t row, int col) {
  bool isnull = false;
  struct varlena* v = pg_call([&] {
    Datum d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col + 1, &isnull);
    return isnull ? static_cast<struct varlena*>(nullptr) : PG_DETOAST_DATUM_PACKED(d);
  });
  if (isnull) return std::nullopt;
  return std::string(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
}

int64_t int64_at(uint64_t row, int col, int64_t if_null) {
  bool isnull = false;
  Oid type = InvalidOid;
  Datum d = pg_call([&] {
    type = SPI_gettypeid(SPI_tuptable->tupdesc, col + 1);
    return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col + 1, &isnull);
  });
  if (isnull) return if_null;
  switch (type) {
    case INT2OID: return DatumGetInt16(d);
    case INT4OID: return DatumGetInt32(d);
    case OIDOID: return DatumGetObjectId(d);
    default: return DatumGetInt64(d);
  }
}

bool bool_at(uint64_t row, int col) {
  bool isnull = false;
  Datum d = pg_call([&] { return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col + 1, &isnull); });
  return !isnull && DatumGetBool(d);
}

uint64_t lsn_at(uint64_t row, int col) {
  bool isnull = false;
  Datum d = pg_call([&] { return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col + 1, &isnull); });
  return isnull ? 0 : DatumGetLSN(d);
}

Datum text_datum(const std::string& s) { return varlena_datum(s); }
Datum bytea_datum(const std::string& s) { return varlena_datum(s); }
Datum text_array(const std::vector<std::string>& items, const std::vector<bool>* nulls) {
  return varlena_array(items, nulls, TEXTOID);
}
Datum bytea_array(const std::vector<std::string>& items, const std::vector<bool>* nulls) {
  return varlena_array(items, nulls, BYTEAOID);
}

Datum int4_array(const std::vector<int32_t>& items) {
  std::vector<Datum> elems;
  elems.reserve(items.size());
  for (int32_t v : items) elems.push_back(Int32GetDatum(v));
  return array_of(elems, nullptr, INT4OID, 4, true, TYPALIGN_INT);
}

Datum int8_array(const std::vector<int64_t>& items, const std::vector<bool>* nulls) {
  std::vector<Datum> elems;
  elems.reserve(items.size());
  for (int64_t v : items) elems.push_back(Int64GetDatum(v));
  return array_of(elems, nulls, INT8OID, 8, true, TYPALIGN_DOUBLE);
}

std::string lsn_text(uint64_t lsn) {
  char buf[32];
  snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32), static_cast<unsigned>(lsn));
  return buf;
}

}  // namespace powersync::pg::spi
