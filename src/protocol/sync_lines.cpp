// NDJSON encoding of sync lines. Hand-written because the data line is the hot path of every
// download (hundreds of thousands of ops per second); shapes follow spec §1.4 exactly.
#include "powersync/protocol/sync_lines.h"

#include <charconv>

#include "powersync/protocol/json_writer.h"  // append_json_string (JSON.stringify escaping)

namespace powersync::protocol {
namespace {

void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto end = std::to_chars(buf, buf + sizeof(buf), v).ptr;
  out.append(buf, static_cast<size_t>(end - buf));
}

// Op ids and write checkpoints are base-10 strings on the wire (spec §1.4, pitfall 1).
void append_id_string(std::string& out, int64_t v) {
  char buf[26];
  buf[0] = '"';
  auto end = std::to_chars(buf + 1, buf + sizeof(buf) - 1, v).ptr;
  *end++ = '"';
  out.append(buf, static_cast<size_t>(end - buf));
}

// The row JSON of a PUT as a JSON string (raw_data). Row JSON has a quote every few bytes, so one
// pass writing into reserved space beats searching for the next escape; the output is the same as
// append_json_string's (a control character, which row JSON never holds unescaped, takes that path).
void append_row_json_string(std::string& out, std::string_view s) {
  size_t start = out.size();
  out.resize(start + 2 * s.size() + 2);
  char* const base = &out[0];
  char* d = base + start;
  *d++ = '"';
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (!byte_needs_escape(c)) {
      *d++ = static_cast<char>(c);
    } else if (c == '"' || c == '\\') {
      d[0] = '\\';
      d[1] = static_cast<char>(c);
      d += 2;
    } else {
      out.resize(static_cast<size_t>(d - base));
      size_t quote = out.size();
      append_json_string(out, s.substr(i));
      out.erase(quote, 1);  // its opening quote
      return;
    }
  }
  *d++ = '"';
  out.resize(static_cast<size_t>(d - base));
}

// Bucket checksums go out as signed int32, like the reference service.
void append_signed_checksum(std::string& out, uint32_t c) { append_int(out, static_cast<int32_t>(c)); }

void append_bucket(std::string& out, const BucketState& b) {
  out += "{\"bucket\":";
  append_json_string(out, b.bucket);
  out += ",\"checksum\":";
  append_signed_checksum(out, b.checksum);
  out += ",\"count\":";
  append_int(out, b.count);
  out += ",\"priority\":";
  append_int(out, b.priority);
  out += '}';
}

void append_buckets(std::string& out, const std::vector<BucketState>& buckets) {
  out += '[';
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (i) out += ',';
    append_bucket(out, buckets[i]);
  }
  out += ']';
}

void append_write_checkpoint(std::string& out, std::optional<int64_t> wcp) {
  if (!wcp) return;
  out += ",\"write_checkpoint\":";
  append_id_string(out, *wcp);
}

void append_op(std::string& out, const OpRecord& op, bool raw_data) {
  out += "{\"op_id\":";
  append_id_string(out, op.op_id);
  out += ",\"op\":";
  append_json_string(out, op.op);
  // MOVE and CLEAR carry only op_id, op and checksum (spec §1.4.3).
  if (op.op == "PUT" || op.op == "REMOVE") {
    out += ",\"object_type\":";
    append_json_string(out, op.object_type);
    out += ",\"object_id\":";
    append_json_string(out, op.object_id);
    if (op.data) {
      out += ",\"data\":";
      if (raw_data) append_row_json_string(out, *op.data);
      else out += *op.data;
    }
    out += ",\"subkey\":";
    append_json_string(out, op.subkey);
  }
  out += ",\"checksum\":";
  append_int(out, op.checksum);  // op checksums unsigned, as the reference service sends them
  out += '}';
}

}  // namespace

std::string checkpoint_line(int64_t last_op_id, std::optional<int64_t> write_checkpoint,
                            const std::vector<BucketState>& buckets) {
  std::string out = "{\"checkpoint\":{\"last_op_id\":";
  append_id_string(out, last_op_id);
  append_write_checkpoint(out, write_checkpoint);
  out += ",\"buckets\":";
  append_buckets(out, buckets);
  out += "}}\n";
  return out;
}

std::string checkpoint_diff_line(int64_t last_op_id, std::optional<int64_t> write_checkpoint,
                                 const std::vector<BucketState>& updated, const std::vector<std::string>& removed) {
  std::string out = "{\"checkpoint_diff\":{\"last_op_id\":";
  append_id_string(out, last_op_id);
  append_write_checkpoint(out, write_checkpoint);
  out += ",\"updated_buckets\":";
  append_buckets(out, updated);
  out += ",\"removed_buckets\":[";
  for (size_t i = 0; i < removed.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, removed[i]);
  }
  out += "]}}\n";
  return out;
}

void append_data_line(std::string& out, std::string_view bucket, int64_t after, bool has_more,
                      const std::vector<OpRecord>& ops, size_t begin, size_t end, bool raw_data) {
  out += "{\"data\":{\"bucket\":";
  append_json_string(out, bucket);
  out += ",\"after\":";
  append_id_string(out, after);
  out += ",\"next_after\":";
  append_id_string(out, end > begin ? ops[end - 1].op_id : after);
  out += has_more ? ",\"has_more\":true,\"data\":[" : ",\"has_more\":false,\"data\":[";
  size_t estimate = 0;  // one allocation for the whole line in the common case
  for (size_t i = begin; i < end; ++i)
    estimate += 160 + ops[i].object_type.size() + ops[i].object_id.size() + ops[i].subkey.size() +
                (ops[i].data ? ops[i].data->size() + ops[i].data->size() / 4 : 0);
  out.reserve(out.size() + estimate);
  for (size_t i = begin; i < end; ++i) {
    if (i != begin) out += ',';
    append_op(out, ops[i], raw_data);
  }
  out += "]}}\n";
}

std::string checkpoint_complete_line(int64_t last_op_id) {
  std::string out = "{\"checkpoint_complete\":{\"last_op_id\":";
  append_id_string(out, last_op_id);
  out += "}}\n";
  return out;
}

std::string partial_checkpoint_complete_line(int64_t last_op_id, int priority) {
  std::string out = "{\"partial_checkpoint_complete\":{\"last_op_id\":";
  append_id_string(out, last_op_id);
  out += ",\"priority\":";
  append_int(out, priority);
  out += "}}\n";
  return out;
}

std::string token_expires_in_line(int64_t seconds) {
  return "{\"token_expires_in\":" + std::to_string(seconds < 0 ? 0 : seconds) + "}\n";
}

}  // namespace powersync::protocol
