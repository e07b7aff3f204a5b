// Op checksums via OpenSSL SHA-256 (see checksum.h).
#include "powersync/protocol/checksum.h"

#include <openssl/sha.h>

#include <string>

namespace powersync::protocol {

uint32_t hash_checksum(std::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return static_cast<uint32_t>(digest[0]) | (static_cast<uint32_t>(digest[1]) << 8) |
         (static_cast<uint32_t>(digest[2]) << 16) | (static_cast<uint32_t>(digest[3]) << 24);
}

uint32_t put_checksum(std::string_view object_type, std::string_view object_id, std::string_view data_json) {
  std::string input;
  input.reserve(6 + object_type.size() + object_id.size() + data_json.size());
  input += "put.";
  input += object_type;
  input += '.';
  input += object_id;
  input += '.';
  input += data_json;
  return hash_checksum(input);
}

uint32_t remove_checksum(std::string_view subkey) {
  std::string input = "delete.";
  input += subkey;
  return hash_checksum(input);
}

}  // namespace powersync::protocol
