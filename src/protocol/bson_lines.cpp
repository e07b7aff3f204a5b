// BSON sync lines: data lines written directly from op records; other NDJSON lines re-encoded in
// one streaming pass (SAX events written as BSON elements, each document's length prefix patched
// when it closes) instead of nlohmann::json::to_bson(nlohmann::json::parse(line)) per line.
#include "powersync/protocol/bson_lines.h"

#include <cstdint>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

namespace powersync::protocol {

namespace {

using json = nlohmann::json;

class BsonWriter {
 public:
  explicit BsonWriter(std::string& out) : out_(out) {}

  bool null() { return element(0x0A); }
  bool boolean(bool v) {
    if (!element(0x08)) return false;
    out_.push_back(v ? '\1' : '\0');
    return true;
  }
  bool number_integer(json::number_integer_t v) {
    if (v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max()) return int32(static_cast<int32_t>(v));
    if (!element(0x12)) return false;
    put_le(static_cast<uint64_t>(v), 8);
    return true;
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (v <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) return int32(static_cast<int32_t>(v));
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return fail("integer does not fit BSON int64");
    if (!element(0x12)) return false;
    put_le(v, 8);
    return true;
  }
  bool number_float(json::number_float_t v, const json::string_t&) {
    if (!element(0x01)) return false;
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    put_le(bits, 8);
    return true;
  }
  bool string(json::string_t& v) {
    if (!element(0x02)) return false;
    put_le(static_cast<uint32_t>(v.size() + 1), 4);
    out_.append(v);
    out_.push_back('\0');
    return true;
  }
  bool binary(json::binary_t&) { return fail("binary values do not occur in JSON text"); }
  bool start_object(std::size_t) {
    if (!frames_.empty() && !element(0x03)) return false;
    open(false);
    return true;
  }
  bool key(json::string_t& k) {
    if (k.find('\0') != std::string::npos) return fail("BSON keys cannot contain U+0000");
    key_.swap(k);
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) {
    if (frames_.empty()) return fail("a BSON document must be a JSON object");
    if (!element(0x04)) return false;
    open(true);
    return true;
  }
  bool end_array() { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) { return fail(e.what()); }

  const std::string& error() const { return error_; }

 private:
  struct Frame {
    size_t start;     // offset of the document's length prefix in out_
    bool array;       // array elements are named "0", "1", ...
    uint32_t next = 0;
  };

  bool int32(int32_t v) {
    if (!element(0x10)) return false;
    put_le(static_cast<uint32_t>(v), 4);
    return true;
  }
  // Type byte and element name (the pending key, or the array index).
  bool element(char type) {
    if (frames_.empty()) return fail("a BSON document must be a JSON object");
    out_.push_back(type);
    Frame& f = frames_.back();
    if (f.array) {
      char digits[12];
      int n = std::snprintf(digits, sizeof digits, "%u", f.next++);
      out_.append(digits, static_cast<size_t>(n));
    } else {
      out_.append(key_);
    }
    out_.push_back('\0');
    return true;
  }
  void open(bool array) {
    frames_.push_back(Frame{out_.size(), array});
    out_.append(4, '\0');
  }
  bool close() {
    out_.push_back('\0');
    const Frame f = frames_.back();
    frames_.pop_back();
    uint32_t size = static_cast<uint32_t>(out_.size() - f.start);
    for (int i = 0; i < 4; ++i) out_[f.start + static_cast<size_t>(i)] = static_cast<char>((size >> (8 * i)) & 0xff);
    return true;
  }
  void put_le(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  bool fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  std::string& out_;
  std::vector<Frame> frames_;
  std::string key_;
  std::string error_;
};

// Writers for append_data_document(), with the element types BsonWriter picks for the same values.
void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_name(std::string& out, char type, std::string_view name) {
  out.push_back(type);
  out.append(name);
  out.push_back('\0');
}
void put_string(std::string& out, std::string_view name, std::string_view value) {
  put_name(out, 0x02, name);
  put_le(out, value.size() + 1, 4);
  out.append(value);
  out.push_back('\0');
}
void put_id_string(std::string& out, std::string_view name, int64_t id) {  // op ids are decimal strings
  char buf[24];
  auto end = std::to_chars(buf, buf + sizeof buf, id).ptr;
  put_string(out, name, std::string_view(buf, static_cast<size_t>(end - buf)));
}
void put_integer(std::string& out, std::string_view name, int64_t v) {
  if (v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max()) {
    put_name(out, 0x10, name);
    put_le(out, static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
  } else {
    put_name(out, 0x12, name);
    put_le(out, static_cast<uint64_t>(v), 8);
  }
}
size_t open_document(std::string& out, char type, std::string_view name) {
  if (type) put_name(out, type, name);
  out.append(4, '\0');
  return out.size() - 4;
}
void close_document(std::string& out, size_t start) {
  out.push_back('\0');
  uint32_t size = static_cast<uint32_t>(out.size() - start);
  for (int i = 0; i < 4; ++i) out[start + static_cast<size_t>(i)] = static_cast<char>((size >> (8 * i)) & 0xff);
}

void put_op(std::string& out, std::string_view index, const OpRecord& op) {
  size_t doc = open_document(out, 0x03, index);
  put_id_string(out, "op_id", op.op_id);
  put_string(out, "op", op.op);
  if (op.op == "PUT" || op.op == "REMOVE") {  // MOVE and CLEAR carry only op_id, op and checksum
    put_string(out, "object_type", op.object_type);
    put_string(out, "object_id", op.object_id);
    if (op.data) put_string(out, "data", *op.data);
    put_string(out, "subkey", op.subkey);
  }
  put_integer(out, "checksum", op.checksum);
  close_document(out, doc);
}

}  // namespace

void append_data_document(std::string& out, std::string_view bucket, int64_t after, bool has_more,
                          const std::vector<OpRecord>& ops, size_t begin, size_t end) {
  size_t root = open_document(out, 0, "");
  size_t line = open_document(out, 0x03, "data");
  put_string(out, "bucket", bucket);
  put_id_string(out, "after", after);
  put_id_string(out, "next_after", end > begin ? ops[end - 1].op_id : after);
  put_name(out, 0x08, "has_more");
  out.push_back(has_more ? '\1' : '\0');
  size_t list = open_document(out, 0x04, "data");
  char index[24];
  for (size_t i = begin; i < end; ++i) {
    auto stop = std::to_chars(index, index + sizeof index, i - begin).ptr;
    put_op(out, std::string_view(index, static_cast<size_t>(stop - index)), ops[i]);
  }
  close_document(out, list);
  close_document(out, line);
  close_document(out, root);
}

void append_bson_documents(std::string& out, std::string_view ndjson) {
  size_t start = 0;
  while (start < ndjson.size()) {
    size_t end = ndjson.find('\n', start);
    if (end == std::string_view::npos) end = ndjson.size();
    if (end > start) {
      const size_t rollback = out.size();
      BsonWriter writer(out);
      const char* first = ndjson.data() + start;
      if (!json::sax_parse(first, ndjson.data() + end, &writer)) {
        out.resize(rollback);
        throw std::runtime_error("sync line is not representable as a BSON document: " +
                                 (writer.error().empty() ? std::string("not a JSON object") : writer.error()));
      }
    }
    start = end + 1;
  }
}

}  // namespace powersync::protocol
