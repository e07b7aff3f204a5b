// JavaScript string semantics over UTF-8 (see text_utils.h).
#include "text_utils.h"

#include <clocale>
#include <cwctype>
#include <locale.h>

namespace powersync::rules::text {
namespace {

// Decodes one code point at s[i]; returns U+FFFD and advances one byte on malformed input.
char32_t decode_one(std::string_view s, size_t& i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    ++i;
    return c;
  }
  int len = 0;
  char32_t cp = 0, min = 0;
  if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
  else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
  else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
  else {
    ++i;
    return 0xFFFD;
  }
  if (i + len > s.size()) {
    ++i;
    return 0xFFFD;
  }
  for (int k = 1; k < len; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return 0xFFFD;
  }
  i += len;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// First UTF-16 unit of a code point: ordering by it (then by the rest) equals code-unit ordering.
char32_t utf16_sort_key(char32_t cp) { return cp < 0x10000 ? cp : 0xD800 + ((cp - 0x10000) >> 10); }

// glibc's C.UTF-8 locale carries the Unicode simple case mappings; created once, never freed.
locale_t unicode_locale() {
  static locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  return loc;
}

// JavaScript's toUpperCase applies Unicode SpecialCasing, where a few characters become several.
const char* special_upper(char32_t cp) {
  switch (cp) {
    case 0x00DF: return "SS";   // ß
    case 0xFB00: return "FF";   // ﬀ
    case 0xFB01: return "FI";   // ﬁ
    case 0xFB02: return "FL";   // ﬂ
    case 0xFB03: return "FFI";  // ﬃ
    case 0xFB04: return "FFL";  // ﬄ
    case 0xFB05: case 0xFB06: return "ST";
    default: return nullptr;
  }
}

// `ascii` is a template parameter (not a function pointer) so the ASCII loop inlines it.
template <typename Ascii, typename Map>
std::string map_case(std::string_view s, Ascii ascii, Map map, bool upper) {
  std::string out;
  if (is_ascii(s)) {
    out.assign(s.data(), s.size());
    for (char& c : out) c = ascii(c);
    return out;
  }
  out.reserve(s.size());
  locale_t loc = unicode_locale();
  size_t i = 0;
  while (i < s.size()) {
    char32_t cp = decode_one(s, i);
    if (upper) {
      if (const char* special = special_upper(cp)) {
        out += special;
        continue;
      }
    }
    if (cp < 0x80) cp = static_cast<unsigned char>(ascii(static_cast<char>(cp)));
    else if (loc) cp = static_cast<char32_t>(map(static_cast<wint_t>(cp), loc));
    append_utf8(out, cp);
  }
  return out;
}

}  // namespace

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

std::u16string to_utf16(std::string_view s) {
  std::u16string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    char32_t cp = decode_one(s, i);
    if (cp < 0x10000) {
      out.push_back(static_cast<char16_t>(cp));
    } else {
      cp -= 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    }
  }
  return out;
}

std::string from_utf16(std::u16string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t u = s[i];
    if (u >= 0xD800 && u <= 0xDBFF && i + 1 < s.size() && s[i + 1] >= 0xDC00 && s[i + 1] <= 0xDFFF) {
      append_utf8(out, 0x10000 + ((u - 0xD800) << 10) + (s[i + 1] - 0xDC00));
      ++i;
    } else if (u >= 0xD800 && u <= 0xDFFF) {
      append_utf8(out, 0xFFFD);
    } else {
      append_utf8(out, u);
    }
  }
  return out;
}

std::string decode_lossy(std::string_view bytes) {
  if (is_ascii(bytes)) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) append_utf8(out, decode_one(bytes, i));
  return out;
}

size_t utf16_length(std::string_view s) {
  size_t n = 0;
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      ++n;
      continue;
    }
    n += decode_one(s, i) >= 0x10000 ? 2 : 1;
  }
  return n;
}

int compare_utf16(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    unsigned char ca = static_cast<unsigned char>(a[i]), cb = static_cast<unsigned char>(b[j]);
    if (ca < 0x80 && cb < 0x80) {
      if (ca != cb) return ca < cb ? -1 : 1;
      ++i, ++j;
      continue;
    }
    char32_t pa = decode_one(a, i), pb = decode_one(b, j);
    if (pa == pb) continue;
    char32_t ka = utf16_sort_key(pa), kb = utf16_sort_key(pb);
    if (ka != kb) return ka < kb ? -1 : 1;
    return pa < pb ? -1 : 1;  // same high surrogate: low surrogates follow code point order
  }
  if (i < a.size()) return 1;
  if (j < b.size()) return -1;
  return 0;
}

std::string to_upper(std::string_view s) {
  return map_case(s, [](char c) -> char { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; },
                  [](wint_t c, locale_t l) { return towupper_l(c, l); }, true);
}

std::string to_lower(std::string_view s) {
  return map_case(s, [](char c) -> char { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; },
                  [](wint_t c, locale_t l) { return towlower_l(c, l); }, false);
}

}  // namespace powersync::rules::text
