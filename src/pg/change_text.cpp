// powersync.describe_change(bytea): a readable rendering of one output-plugin message, for tests and
// debugging of the plugin and the value mapping (the worker itself reads the binary form).
extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(powersync_describe_change);
}

#include <cstdio>
#include <string>

#include "powersync/pg/boundary.h"
#include "powersync/pg/change_format.h"

namespace powersync::pg {
namespace {

void append_quoted(std::string& out, std::string_view s) {
  out.push_back('\'');
  for (char c : s) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  out.push_back('\'');
}

void append_value(std::string& out, wire::Reader& r) {
  char tag = static_cast<char>(r.u8());
  char buf[64];
  switch (tag) {
    case 'n': out += "null"; return;
    case 'u': out += "unchanged-toast"; return;
    case 'i': snprintf(buf, sizeof buf, "%lld", static_cast<long long>(r.i64())); out += buf; return;
    case 'r': snprintf(buf, sizeof buf, "real:%.17g", r.f64()); out += buf; return;
    case 't': append_quoted(out, r.str()); return;
    case 'b': {
      std::string_view b = r.str();
      out += "blob:\\x";
      for (unsigned char c : b) { snprintf(buf, sizeof buf, "%02x", c); out += buf; }
      return;
    }
  }
  throw Error(Error::Kind::Internal, "unknown value tag");
}

void append_tuple(std::string& out, wire::Reader& r) {
  uint16_t n = r.u16();
  if (n & wire::kOutOfLine) out += "out-of-line ";
  n &= static_cast<uint16_t>(~wire::kOutOfLine);
  out += '(';
  for (uint16_t i = 0; i < n; ++i) {
    if (i) out += ", ";
    append_value(out, r);
  }
  out += ')';
}

void append_old(std::string& out, wire::Reader& r) {
  char kind = static_cast<char>(r.u8());
  if (kind == 'n') return;
  out += kind == 'k' ? " old-key " : " old-row ";
  append_tuple(out, r);
}

// Relation ids and LSNs vary between runs, so they are left out of the text.
std::string describe(std::string_view bytes) {
  wire::Reader r(bytes);
  std::string out;
  char kind = static_cast<char>(r.u8());
  switch (kind) {
    case 'B': out = "BEGIN"; break;
    case 'C': out = "COMMIT"; break;
    case 'R': {
      r.u32();
      out = "RELATION ";
      out += r.str();
      out += '.';
      out += r.str();
      out += " identity=";
      out += static_cast<char>(r.u8());
      uint16_t n = r.u16();
      for (uint16_t i = 0; i < n; ++i) {
        out += i ? ", " : " ";
        out += r.str();
        char buf[32];
        snprintf(buf, sizeof buf, ":%u", r.u32());
        out += buf;
        if (r.u8() & 1) out += '*';
      }
      break;
    }
    case 'I': r.u32(); out = "INSERT "; append_tuple(out, r); break;
    case 'U': r.u32(); out = "UPDATE"; append_old(out, r); out += " new "; append_tuple(out, r); break;
    case 'D': r.u32(); out = "DELETE"; append_old(out, r); break;
    case 'T': {
      uint16_t n = r.u16();
      out = "TRUNCATE " + std::to_string(n) + " table(s)";
      for (uint16_t i = 0; i < n; ++i) r.u32();
      break;
    }
    case 'M': {
      bool transactional = r.u8() != 0;
      r.u64();
      out = transactional ? "MESSAGE transactional " : "MESSAGE ";
      out += r.str();
      out += ' ';
      append_quoted(out, r.str());
      break;
    }
    default: throw invalid_input("not a powersync_pg change message", std::string("first byte: ") + kind);
  }
  return out;
}

}  // namespace
}  // namespace powersync::pg

extern "C" Datum powersync_describe_change(PG_FUNCTION_ARGS) {
  return powersync::pg::pg_entry([&]() -> Datum {
    bytea* data = PG_GETARG_BYTEA_PP(0);
    std::string text = powersync::pg::describe(std::string_view(VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data)));
    return PointerGetDatum(cstring_to_text_with_len(text.data(), static_cast<int>(text.size())));
  });
}
