// Op and bucket checksums (spec §2.3): SHA-256 of the op's identity string, first 4 digest bytes as a
// little-endian u32; bucket checksums are wrapping u32 sums, sent to clients as signed 32-bit.
#pragma once

#include <cstdint>
#include <string_view>

namespace powersync::protocol {

// Checksum of arbitrary bytes: first 4 bytes of SHA-256, little-endian.
uint32_t hash_checksum(std::string_view bytes);

// PUT: hash of "put." + object_type + "." + object_id + "." + data_json.
uint32_t put_checksum(std::string_view object_type, std::string_view object_id, std::string_view data_json);

// REMOVE: hash of "delete." + subkey.
uint32_t remove_checksum(std::string_view subkey);

// The full SHA-256 digest of `bytes` (source keys of rows without a single integer key).
void sha256(std::string_view bytes, unsigned char (&digest)[32]);

// Wrapping sum modulo 2^32.
inline uint32_t add_checksums(uint32_t a, uint32_t b) { return a + b; }

// The same 32 bits read as signed (what the service sends, e.g. 4201080675 -> -93886621) and back.
inline int32_t checksum_to_signed(uint32_t c) { return static_cast<int32_t>(c); }
inline uint32_t checksum_from_signed(int64_t c) { return static_cast<uint32_t>(c); }

}  // namespace powersync::protocol
