// One-pass validating JSON scanner with path lookup (see json_path.h). The grammar is RFC 8259
// (what nlohmann::json accepts): no comments, no trailing commas, UTF-8 strings.
#include "json_path.h"

#include <cctype>
#include <cstdint>
#include <cstring>

namespace powersync::rules::json_path {
namespace {

constexpr int kMaxDepth = 256;
constexpr size_t kMaxKeysChecked = 64;  // larger objects go to the full parser for duplicate checks

struct Fallback {};
struct Invalid {};

class Scanner {
 public:
  Scanner(std::string_view text, const std::vector<std::string>& path) : p_(text.data()), end_(text.data() + text.size()), path_(path) {}

  Lookup run() {
    Lookup result;
    try {
      ws();
      const char* start = p_;
      value(0, true);
      ws();
      if (p_ != end_) throw Invalid{};
      if (!target_set_) {
        // Empty path: the target is the whole value.
        if (path_.empty()) target_ = std::string_view(start, static_cast<size_t>(value_end_ - start)), target_set_ = true;
      }
      result.outcome = undefined_ ? Outcome::Undefined : target_set_ ? Outcome::Found : Outcome::Undefined;
      result.target = target_;
    } catch (const Invalid&) {
      result.outcome = Outcome::Invalid;
    } catch (const Fallback&) {
      result.outcome = Outcome::Fallback;
    }
    return result;
  }

 private:
  void ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  char peek() const { return p_ < end_ ? *p_ : '\0'; }
  void expect(char c) {
    if (peek() != c) throw Invalid{};
    ++p_;
  }

  // Scans one value. `on_path`: this value is the path's current position (step `level`).
  void value(size_t level, bool on_path) {
    if (static_cast<int>(level) > kMaxDepth || depth_ > kMaxDepth) throw Fallback{};
    const char* start = p_;
    bool more_steps = on_path && level < path_.size();
    switch (peek()) {
      case '{': object(level, more_steps); break;
      case '[': array(level, more_steps); break;
      case '"': {
        string(nullptr);
        if (more_steps) throw Fallback{};  // JS string indexing ("abc"[0], .length)
        break;
      }
      case 't': literal("true", more_steps); break;
      case 'f': literal("false", more_steps); break;
      case 'n':
        literal("null", false);
        if (more_steps && !target_set_) {  // the reference stops at null and keeps it
          target_ = std::string_view(start, 4);
          target_set_ = true;
        }
        break;
      default:
        number();
        if (more_steps) undefined_ = true;
    }
    value_end_ = p_;
    if (on_path && level == path_.size() && level > 0 && !target_set_) {
      target_ = std::string_view(start, static_cast<size_t>(p_ - start));
      target_set_ = true;
    }
  }

  void literal(const char* word, bool more_steps) {
    size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) throw Invalid{};
    p_ += n;
    if (more_steps) undefined_ = true;
  }

  void number() {
    if (peek() == '-') ++p_;
    if (peek() == '0') {
      ++p_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9') ++p_;
    } else {
      throw Invalid{};
    }
    if (peek() == '.') {
      ++p_;
      if (!(peek() >= '0' && peek() <= '9')) throw Invalid{};
      while (peek() >= '0' && peek() <= '9') ++p_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++p_;
      if (peek() == '+' || peek() == '-') ++p_;
      if (!(peek() >= '0' && peek() <= '9')) throw Invalid{};
      while (peek() >= '0' && peek() <= '9') ++p_;
    }
  }

  // Validates a string; `raw` receives the contents between the quotes. Returns true if it has
  // escapes.
  bool string(std::string_view* raw) {
    expect('"');
    const char* start = p_;
    bool escapes = false;
    while (true) {
      if (p_ >= end_) throw Invalid{};
      unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') break;
      if (c < 0x20) throw Invalid{};
      if (c == '\\') {
        escapes = true;
        ++p_;
        char e = peek();
        if (e == 'u') {
          for (int i = 1; i <= 4; ++i)
            if (p_ + i >= end_ || !std::isxdigit(static_cast<unsigned char>(p_[i]))) throw Invalid{};
          throw Fallback{};  // surrogate pairing rules: leave \u escapes to the full parser
        }
        if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' && e != 't') throw Invalid{};
        ++p_;
        continue;
      }
      if (c >= 0x80) {
        utf8();
        continue;
      }
      ++p_;
    }
    if (raw) *raw = std::string_view(start, static_cast<size_t>(p_ - start));
    ++p_;
    return escapes;
  }

  void utf8() {
    unsigned char c = static_cast<unsigned char>(*p_);
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
    else throw Invalid{};
    if (end_ - p_ < len) throw Invalid{};
    for (int i = 1; i < len; ++i) {
      unsigned char cc = static_cast<unsigned char>(p_[i]);
      if ((cc & 0xC0) != 0x80) throw Invalid{};
      cp = (cp << 6) | (cc & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) throw Invalid{};
    p_ += len;
  }

  void object(size_t level, bool more_steps) {
    ++depth_;
    expect('{');
    ws();
    std::vector<std::string_view> keys;
    bool matched = false;
    if (peek() == '}') {
      ++p_;
    } else {
      while (true) {
        ws();
        std::string_view key;
        if (string(&key)) throw Fallback{};  // escaped keys: compare after unescaping, in the full parser
        for (const auto& k : keys)
          if (k == key) throw Invalid{};  // duplicate keys are invalid for JSONBig
        if (keys.size() >= kMaxKeysChecked) throw Fallback{};
        keys.push_back(key);
        ws();
        expect(':');
        ws();
        bool hit = more_steps && !undefined_ && !target_set_ && key == path_[level];
        if (hit) matched = true;
        value(level + 1, hit);
        ws();
        if (peek() == ',') {
          ++p_;
          continue;
        }
        expect('}');
        break;
      }
    }
    if (more_steps && !matched && !target_set_) undefined_ = true;
    --depth_;
  }

  void array(size_t level, bool more_steps) {
    ++depth_;
    expect('[');
    ws();
    long wanted = -1;
    if (more_steps && !undefined_ && !target_set_) {
      const std::string& c = path_[level];
      if (c == "length") throw Fallback{};
      wanted = canonical_index(c);
      if (wanted < 0) undefined_ = true;
    }
    long index = 0;
    bool matched = false;
    if (peek() == ']') {
      ++p_;
    } else {
      while (true) {
        ws();
        bool hit = wanted >= 0 && index == wanted && !undefined_ && !target_set_;
        if (hit) matched = true;
        value(level + 1, hit);
        ++index;
        ws();
        if (peek() == ',') {
          ++p_;
          continue;
        }
        expect(']');
        break;
      }
    }
    if (wanted >= 0 && !matched && !target_set_) undefined_ = true;
    --depth_;
  }

  static long canonical_index(const std::string& s) {
    if (s.empty() || s.size() > 9 || (s.size() > 1 && s[0] == '0')) return -1;
    long v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return -1;
      v = v * 10 + (c - '0');
    }
    return v;
  }

  const char* p_;
  const char* end_;
  const std::vector<std::string>& path_;
  int depth_ = 0;
  bool undefined_ = false;
  bool target_set_ = false;
  std::string_view target_;
  const char* value_end_ = nullptr;
};

}  // namespace

Lookup find(std::string_view text, const std::vector<std::string>& components) {
  return Scanner(text, components).run();
}

}  // namespace powersync::rules::json_path
