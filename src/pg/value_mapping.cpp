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

namespace {

SyncKind kind_of(Oid typid) {
  switch (typid) {
    case INT2OID: case INT4OID: case INT8OID: case OIDOID: return SyncKind::Integer;
    case BOOLOID: return SyncKind::Boolean;
    case FLOAT4OID: return SyncKind::Float4;
    case FLOAT8OID: return SyncKind::Float8;
    case BYTEAOID: return SyncKind::Bytea;
    case DATEOID: return SyncKind::Date;
    case TIMESTAMPOID: return SyncKind::Timestamp;
    case TIMESTAMPTZOID: return SyncKind::TimestampTz;
    case TEXTOID: case VARCHAROID: case BPCHAROID: return SyncKind::VarText;
    case NAMEOID: return SyncKind::Name;
    default: break;
  }
  if (OidIsValid(get_element_type(typid))) return SyncKind::Array;
  return SyncKind::Output;
}

bool is_datetime(SyncKind kind) {
  return kind == SyncKind::Date || kind == SyncKind::Timestamp || kind == SyncKind::TimestampTz;
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

// Room for the text of a date/timestamp/timestamptz: EncodeDateTime's longest output + 'Z' + NUL.
constexpr int kDatetimeLen = MAXDATELEN + 2;

// Legacy text of date/timestamp/timestamptz (ISO style independent of DateStyle) into `buf`
// (kDatetimeLen bytes, NUL-terminated). Returns false when the value has no text form (timestamptz
// year out of range -> NULL).
bool format_datetime(char* buf, SyncKind kind, Datum v) {
  if (kind == SyncKind::Date) {
    DateADT d = DatumGetDateADT(v);
    if (DATE_IS_NOBEGIN(d)) { strcpy(buf, "0000-01-01"); return true; }
    if (DATE_IS_NOEND(d)) { strcpy(buf, "9999-12-31"); return true; }
    struct pg_tm tm;
    j2date(d + POSTGRES_EPOCH_JDATE, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
    EncodeDateOnly(&tm, USE_ISO_DATES, buf);
    return true;
  }
  bool with_tz = kind == SyncKind::TimestampTz;
  Timestamp ts = DatumGetTimestamp(v);
  if (TIMESTAMP_IS_NOBEGIN(ts)) { strcpy(buf, with_tz ? "0000-01-01 00:00:00Z" : "0000-01-01 00:00:00"); return true; }
  if (TIMESTAMP_IS_NOEND(ts)) { strcpy(buf, with_tz ? "9999-12-31 23:59:59Z" : "9999-12-31 23:59:59"); return true; }
  struct pg_tm tm;
  fsec_t fsec;
  // tzp = NULL: no time zone conversion, i.e. timestamptz is rendered in UTC.
  if (timestamp2tm(ts, nullptr, &tm, &fsec, nullptr, nullptr) != 0) return false;
  if (with_tz && tm.tm_year > 9999) return false;
  EncodeDateTime(&tm, fsec, false, 0, nullptr, USE_ISO_DATES, buf);
  if (with_tz) strcat(buf, "Z");
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

// One array element; `output` is the element type's output function when the caller has it at hand.
void append_json_element(StringInfo json, SyncKind kind, Oid elemtype, FmgrInfo* output, Datum v, bool isnull) {
  if (isnull) { appendStringInfoString(json, "null"); return; }
  switch (kind) {
    case SyncKind::Integer: appendStringInfo(json, INT64_FORMAT, integer_of(elemtype, v)); return;
    case SyncKind::Boolean: appendStringInfoChar(json, DatumGetBool(v) ? '1' : '0'); return;
    case SyncKind::Float4: append_json_double(json, float4_as_double(DatumGetFloat4(v))); return;
    case SyncKind::Float8: append_json_double(json, DatumGetFloat8(v)); return;
    case SyncKind::Bytea: appendStringInfoString(json, "null"); return;
    default: break;
  }
  if (is_datetime(kind)) {
    char buf[kDatetimeLen];
    if (format_datetime(buf, kind, v)) escape_json(json, buf);
    else appendStringInfoString(json, "null");
    return;
  }
  StringInfoData text;
  initStringInfo(&text);
  if (output != nullptr && kind == SyncKind::Output) {
    char* s = OutputFunctionCall(output, v);
    appendStringInfoString(&text, s);
    pfree(s);
  } else {
    append_output_text(&text, elemtype, v);
  }
  escape_json(json, text.data);
  pfree(text.data);
}

// Nested JSON arrays for one dimension of a (possibly multi-dimensional) array.
void append_json_dimension(StringInfo json, int dim, int ndim, const int* dims, Datum* elems, bool* nulls,
                           int* index, SyncKind kind, Oid elemtype, FmgrInfo* output) {
  appendStringInfoChar(json, '[');
  for (int i = 0; i < dims[dim]; ++i) {
    if (i > 0) appendStringInfoChar(json, ',');
    if (dim + 1 < ndim) {
      append_json_dimension(json, dim + 1, ndim, dims, elems, nulls, index, kind, elemtype, output);
    } else {
      append_json_element(json, kind, elemtype, output, elems[*index], nulls[*index]);
      ++*index;
    }
  }
  appendStringInfoChar(json, ']');
}

// `m`: the column's mapping when the caller has one (its element type's details are then not looked up).
void append_array_json(StringInfo json, Datum v, ColumnMapping* m) {
  ArrayType* arr = DatumGetArrayTypeP(v);
  Oid elemtype = ARR_ELEMTYPE(arr);
  int16 elmlen;
  bool elmbyval;
  char elmalign;
  SyncKind kind;
  FmgrInfo* output = nullptr;
  if (m != nullptr && m->elemtype == elemtype) {
    elmlen = m->elmlen;
    elmbyval = m->elmbyval;
    elmalign = m->elmalign;
    kind = m->elem_kind;
    output = &m->elem_output;
  } else {
    get_typlenbyvalalign(elemtype, &elmlen, &elmbyval, &elmalign);
    kind = kind_of(elemtype);
  }
  Datum* elems;
  bool* nulls;
  int n;
  deconstruct_array(arr, elemtype, elmlen, elmbyval, elmalign, &elems, &nulls, &n);
  int ndim = ARR_NDIM(arr);
  int index = 0;
  if (ndim == 0) appendStringInfoString(json, "[]");
  else append_json_dimension(json, 0, ndim, ARR_DIMS(arr), elems, nulls, &index, kind, elemtype, output);
  pfree(elems);
  pfree(nulls);
}

void put_text(StringInfo out, const char* s, size_t len) {
  put_u8(out, 't');
  put_str(out, s, len);
}

// The value of a non-null datum of a type of `kind`; `m` is the column's mapping when the caller has one
// (else the output function and an array's element type are looked up).
void append_value(StringInfo out, SyncKind kind, Oid typid, ColumnMapping* m, Datum value) {
  FmgrInfo* output = m != nullptr ? &m->output : nullptr;
  switch (kind) {
    case SyncKind::Integer: put_u8(out, 'i'); put_u64(out, static_cast<uint64>(integer_of(typid, value))); return;
    case SyncKind::Boolean: put_u8(out, 'i'); put_u64(out, DatumGetBool(value) ? 1 : 0); return;
    case SyncKind::Float4:
    case SyncKind::Float8: {
      double d = kind == SyncKind::Float4 ? float4_as_double(DatumGetFloat4(value)) : DatumGetFloat8(value);
      if (std::isnan(d) || std::isinf(d)) {  // not representable in JSON: sync the PG text instead
        const char* s = std::isnan(d) ? "NaN" : (d > 0 ? "Infinity" : "-Infinity");
        put_text(out, s, strlen(s));
        return;
      }
      put_u8(out, 'r');
      appendBinaryStringInfo(out, reinterpret_cast<const char*>(&d), 8);
      return;
    }
    case SyncKind::Bytea: {
      bytea* b = DatumGetByteaPP(value);
      put_u8(out, 'b');
      put_str(out, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
      return;
    }
    case SyncKind::VarText: {
      text* t = DatumGetTextPP(value);
      put_text(out, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
      return;
    }
    case SyncKind::Name: {
      const char* s = NameStr(*DatumGetName(value));
      put_text(out, s, strnlen(s, NAMEDATALEN));
      return;
    }
    case SyncKind::Date:
    case SyncKind::Timestamp:
    case SyncKind::TimestampTz: {
      char buf[kDatetimeLen];
      if (format_datetime(buf, kind, value)) put_text(out, buf, strlen(buf));
      else put_u8(out, 'n');
      return;
    }
    case SyncKind::Array: {
      StringInfoData json;
      initStringInfo(&json);
      append_array_json(&json, value, m);
      put_text(out, json.data, json.len);
      pfree(json.data);
      return;
    }
    case SyncKind::Output: {
      char* s;
      if (output) {
        s = OutputFunctionCall(output, value);
      } else {
        Oid func;
        bool varlena;
        getTypeOutputInfo(typid, &func, &varlena);
        s = OidOutputFunctionCall(func, value);
      }
      put_text(out, s, strlen(s));
      pfree(s);
      return;
    }
  }
}

}  // namespace

void append_sync_value(StringInfo out, Oid typid, Datum value, bool isnull) {
  if (isnull) { put_u8(out, 'n'); return; }
  append_value(out, kind_of(typid), typid, nullptr, value);
}

void init_column_mapping(ColumnMapping* m, Oid typid) {
  m->typid = typid;
  m->kind = kind_of(typid);
  if (m->kind == SyncKind::Output) {
    Oid func;
    bool varlena;
    getTypeOutputInfo(typid, &func, &varlena);
    fmgr_info(func, &m->output);
  }
  m->elemtype = InvalidOid;
  if (m->kind == SyncKind::Array) {
    m->elemtype = get_element_type(typid);
    get_typlenbyvalalign(m->elemtype, &m->elmlen, &m->elmbyval, &m->elmalign);
    m->elem_kind = kind_of(m->elemtype);
    if (m->elem_kind == SyncKind::Output) {
      Oid func;
      bool varlena;
      getTypeOutputInfo(m->elemtype, &func, &varlena);
      fmgr_info(func, &m->elem_output);
    }
  }
}

void append_column_value(StringInfo out, ColumnMapping* m, Datum value, bool isnull) {
  if (isnull) { put_u8(out, 'n'); return; }
  append_value(out, m->kind, m->typid, m, value);
}

}  // namespace powersync::pg
