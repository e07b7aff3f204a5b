// Postgres datum -> sync value (spec §4.10, edition-1 formats), appended in the change_format.h value
// encoding to a StringInfo. Shared by the output plugin and the snapshot copy so both agree.
// C-style on purpose: these functions may ereport, so they hold no C++ objects.
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
}

#include <cstring>

namespace powersync::pg {

// Appends raw bytes: inline, since the plugin and the snapshot call these several times per value.
inline void put_bytes(StringInfo out, const void* p, size_t n) {
  if (out->len + static_cast<int>(n) >= out->maxlen) enlargeStringInfo(out, static_cast<int>(n));
  memcpy(out->data + out->len, p, n);
  out->len += static_cast<int>(n);
  out->data[out->len] = '\0';
}
inline void put_u8(StringInfo out, uint8 v) {
  if (out->len + 1 >= out->maxlen) enlargeStringInfo(out, 1);
  out->data[out->len++] = static_cast<char>(v);
  out->data[out->len] = '\0';
}
inline void put_u16(StringInfo out, uint16 v) { put_bytes(out, &v, 2); }  // little-endian hosts only
inline void put_u32(StringInfo out, uint32 v) { put_bytes(out, &v, 4); }
inline void put_u64(StringInfo out, uint64 v) { put_bytes(out, &v, 8); }
inline void put_str(StringInfo out, const char* s, size_t len) {
  put_u32(out, static_cast<uint32>(len));
  put_bytes(out, s, len);
}

// Appends the encoded sync value of `value` (of type `typid`). NULL -> 'n'. The datum must not be an
// unchanged-TOAST pointer (callers write 'u' for those); a short (packed) varlena is fine.
void append_sync_value(StringInfo out, Oid typid, Datum value, bool isnull);

// How one column's values map, looked up once per column rather than once per value (the type's category,
// its output function): for a reader of many rows of one table. Same sync values as append_sync_value.
enum class SyncKind : uint8 {
  Integer, Boolean, Float4, Float8, Bytea, Date, Timestamp, TimestampTz, Array,
  VarText,   // text, varchar, bpchar: the output function's text is the value's own bytes
  Name,      // name: likewise, up to the terminating NUL
  Output,    // anything else: the type's output function
};
struct ColumnMapping {
  Oid typid;
  SyncKind kind;
  FmgrInfo output;  // valid for SyncKind::Output; lives in the memory context current at init
  // SyncKind::Array: the element type, its storage, its category and (category Output) its output function
  Oid elemtype;
  int16 elmlen;
  bool elmbyval;
  char elmalign;
  SyncKind elem_kind;
  FmgrInfo elem_output;
};
void init_column_mapping(ColumnMapping* m, Oid typid);
void append_column_value(StringInfo out, ColumnMapping* m, Datum value, bool isnull);

}  // namespace powersync::pg
