// Postgres datum -> sync value (spec §4.10 edition 1): the one place that decides how a column value
// looks on devices. Written C-style because every call here may ereport (see value_mapping.h).
#include "powersync/pg/value_mapping.h"

extern "C" {
#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

#include <cmath>
#include <cstdio>
#include <cstring>

namespace powersync::pg {

void put_u8(StringInfo out, uint8 v) { appendStringInfoCharMacro(out, static_cast<char>(v)); }
void put_u16(StringInfo out, uint16 v) { appendBinaryStringInfo(out, reinterpret_cast<const char*>(&v), 2); }
void put_u32(StringInfo out, uint32 v) { appendBinaryStringInfo(out, reinterpret_cast<const char*>(&v), 4); }
void put_u64(StringInfo out, uint64 v) { appendBinaryStringInfo(out, reinterpret_cast<const char*>(&v), 8); }
void put_str(StringInfo out, const char* s, size_t len) {
  put_u32(out, static_cast<uint32>(len));
  appendBinaryStringInfo(out, s, static_cast<int>(len));
}

namespace {

enum class Kind { Integer, Boolean, Float4, Float8, Bytea, Date, Timestamp, TimestampTz, Array, Text };

Kind kind_of(Oid typid) {
  switch (typid) {
    case INT2OID: case INT4OID: case INT8OID: case OIDOID: return Kind::Integer;
    case BOOLOID: return Kind::Boolean;
    case FLOAT4OID: return Kind::Float4;
    case FLOAT8OID: return Kind::Float8;
    case BYTEAOID: return Kind::Bytea;
    case DATEOID: return Kind::Date;
    case TIMESTAMPOID: return Kind::Timestamp;
    case TIMESTAMPTZOID: return Kind::TimestampTz;
    default: break;
  }
  if (OidIsValid(get_element_type(typid))) return Kind::Array;
  return Kind::Text;
}

int64 integer_of(Oid typid, Datum v) {
  switch (typid) {
    case INT2OID: return DatumGetInt16(v);
    case INT4OID: return DatumGetInt32(v);
    case OIDOID: return DatumGetObjectId(v);
    default: return DatumGetInt64(v);
  }
}

// float4 goes through its shortest decimal text so that 3.14::real becomes 3.14, not 3.140000104904175.
double float4_as_double(float f) {
  char buf[FLOAT_SHORTEST_DECIMAL_LEN + 1];
  float_to_shortest_decimal_buf(f, buf);
  return strtod(buf, nullptr);
}

// Legacy text of date/timestamp/timestamptz (ISO style independent of DateStyle). Returns false when
// the value has no text form (timestamptz year out of range -> NULL).
bool format_datetime(StringInfo text, Kind kind, Datum v) {
  char buf[MAXDATELEN + 1];
  if (kind == Kind::Date) {
    DateADT d = DatumGetDateADT(v);
    if (DATE_IS_NOBEGIN(d)) { appendStringInfoString(text, "0000-01-01"); return true; }
    if (DATE_IS_NOEND(d)) { appendStringInfoString(text, "9999-12-31"); return true; }
    struct pg_tm tm;
    j2date(d + POSTGRES_EPOCH_JDATE, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
    EncodeDateOnly(&tm, USE_ISO_DATES, buf);
    appendStringInfoString(text, buf);
    return true;
  }
  bool with_tz = kind == Kind::TimestampTz;
  Timestamp ts = DatumGetTimestamp(v);
  if (TIMESTAMP_IS_NOBEGIN(ts)) { appendStringInfoString(text, with_tz ? "0000-01-01 00:00:00Z" : "0000-01-01 00:00:00"); return true; }
  if (TIMESTAMP_IS_NOEND(ts)) { appendStringInfoString(text, with_tz ? "9999-12-31 23:59:59Z" : "9999-12-31 23:59:59"); return true; }
  struct pg_tm tm;
  fsec_t fsec;
  // tzp = NULL: no time zone conversion, i.e. timestamptz is rendered in UTC.
  if (timestamp2tm(ts, nullptr, &tm, &fsec, nullptr, nullptr) != 0) return false;
  if (with_tz && tm.tm_year > 9999) return false;
  EncodeDateTime(&tm, fsec, false, 0, nullptr, USE_ISO_DATES, buf);
  appendStringInfoString(text, buf);
  if (with_tz) appendStringInfoChar(text, 'Z');
  return true;
}

void append_output_text(StringInfo text, Oid typid, Datum v) {
  Oid func;
  bool varlena;
  getTypeOutputInfo(typid, &func, &varlena);
  char* s = OidOutputFunctionCall(func, v);
  appendStringInfoString(text, s);
  pfree(s);
}

void append_json_double(StringInfo json, double d) {
  if (std::isnan(d) || std::isinf(d)) { appendStringInfoString(json, "null"); return; }
  char buf[DOUBLE_SHORTEST_DECIMAL_LEN + 3];
  double_to_shortest_decimal_buf(d, buf);
  appendStringInfoString(json, buf);
  if (!strpbrk(buf, ".eE")) appendStringInfoString(json, ".0");  // integral REAL keeps a ".0" (spec §4.10)
}

void append_json_element(StringInfo json, Oid elemtype, Datum v, bool isnull) {
  if (isnull) { appendStringInfoString(json, "null"); return; }
  Kind kind = kind_of(elemtype);
  switch (kind) {
    case Kind::Integer: appendStringInfo(json, INT64_FORMAT, integer_of(elemtype, v)); return;
    case Kind::Boolean: appendStringInfoChar(json, DatumGetBool(v) ? '1' : '0'); return;
    case Kind::Float4: append_json_double(json, float4_as_double(DatumGetFloat4(v))); return;
    case Kind::Float8: append_json_double(json, DatumGetFloat8(v)); return;
    case Kind::Bytea: appendStringInfoString(json, "null"); return;
    default: break;
  }
  StringInfoData text;
  initStringInfo(&text);
  if (kind == Kind::Date || kind == Kind::Timestamp || kind == Kind::TimestampTz) {
    if (!format_datetime(&text, kind, v)) { appendStringInfoString(json, "null"); pfree(text.data); return; }
  } else {
    append_output_text(&text, elemtype, v);
  }
  escape_json(json, text.data);
  pfree(text.data);
}

// Nested JSON arrays for one dimension of a (possibly multi-dimensional) array.
void append_json_dimension(StringInfo json, int dim, int ndim, const int* dims, Datum* elems, bool* nulls,
                           int* index, Oid elemtype) {
  appendStringInfoChar(json, '[');
  for (int i = 0; i < dims[dim]; ++i) {
    if (i > 0) appendStringInfoChar(json, ',');
    if (dim + 1 < ndim) {
      append_json_dimension(json, dim + 1, ndim, dims, elems, nulls, index, elemtype);
    } else {
      append_json_element(json, elemtype, elems[*index], nulls[*index]);
      ++*index;
    }
  }
  appendStringInfoChar(json, ']');
}

void append_array_json(StringInfo json, Datum v) {
  ArrayType* arr = DatumGetArrayTypeP(v);
  Oid elemtype = ARR_ELEMTYPE(arr);
  int16 elmlen;
  bool elmbyval;
  char elmalign;
  get_typlenbyvalalign(elemtype, &elmlen, &elmbyval, &elmalign);
  Datum* elems;
  bool* nulls;
  int n;
  deconstruct_array(arr, elemtype, elmlen, elmbyval, elmalign, &elems, &nulls, &n);
  int ndim = ARR_NDIM(arr);
  int index = 0;
  if (ndim == 0) appendStringInfoString(json, "[]");
  else append_json_dimension(json, 0, ndim, ARR_DIMS(arr), elems, nulls, &index, elemtype);
  pfree(elems);
  pfree(nulls);
}

void put_text_value(StringInfo out, const StringInfoData& text) {
  put_u8(out, 't');
  put_str(out, text.data, text.len);
}

}  // namespace

void append_sync_value(StringInfo out, Oid typid, Datum value, bool isnull) {
  if (isnull) { put_u8(out, 'n'); return; }
  Kind kind = kind_of(typid);
  switch (kind) {
    case Kind::Integer: put_u8(out, 'i'); put_u64(out, static_cast<uint64>(integer_of(typid, value))); return;
    case Kind::Boolean: put_u8(out, 'i'); put_u64(out, DatumGetBool(value) ? 1 : 0); return;
    case Kind::Float4:
    case Kind::Float8: {
      double d = kind == Kind::Float4 ? float4_as_double(DatumGetFloat4(value)) : DatumGetFloat8(value);
      if (std::isnan(d) || std::isinf(d)) {  // not representable in JSON: sync the PG text instead
        const char* s = std::isnan(d) ? "NaN" : (d > 0 ? "Infinity" : "-Infinity");
        put_u8(out, 't');
        put_str(out, s, strlen(s));
        return;
      }
      put_u8(out, 'r');
      appendBinaryStringInfo(out, reinterpret_cast<const char*>(&d), 8);
      return;
    }
    case Kind::Bytea: {
      bytea* b = DatumGetByteaPP(value);
      put_u8(out, 'b');
      put_str(out, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
      return;
    }
    default: break;
  }
  StringInfoData text;
  initStringInfo(&text);
  if (kind == Kind::Array) {
    append_array_json(&text, value);
  } else if (kind == Kind::Date || kind == Kind::Timestamp || kind == Kind::TimestampTz) {
    if (!format_datetime(&text, kind, value)) { put_u8(out, 'n'); pfree(text.data); return; }
  } else {
    append_output_text(&text, typid, value);
  }
  put_text_value(out, text);
  pfree(text.data);
}

}  // namespace powersync::pg
