// Text helpers giving JavaScript string semantics over UTF-8 storage: lengths and indexes in UTF-16
// code units, code-unit ordering, TextDecoder-style lossy decoding, Unicode case mapping.
// Internal to src/rules.
#pragma once

#include <string>
#include <string_view>

namespace powersync::rules::text {

std::u16string to_utf16(std::string_view utf8);      // invalid bytes -> U+FFFD (like TextDecoder)
std::string from_utf16(std::u16string_view utf16);   // lone surrogates -> U+FFFD
std::string decode_lossy(std::string_view bytes);    // bytes -> valid UTF-8 (TextDecoder)
size_t utf16_length(std::string_view utf8);          // JS String#length
int compare_utf16(std::string_view a, std::string_view b);  // JS string < and >, as -1/0/1
std::string to_upper(std::string_view utf8);
std::string to_lower(std::string_view utf8);
bool is_ascii(std::string_view s);

}  // namespace powersync::rules::text
