// Op checksums via OpenSSL SHA-256 (see checksum.h). The digest algorithm is fetched once and each
// thread reuses one digest context: per-call setup would otherwise cost as much as the hash.
#include "powersync/protocol/checksum.h"

#include <openssl/evp.h>

#include <initializer_list>
#include <memory>
#include <stdexcept>

namespace powersync::protocol {
namespace {

const EVP_MD* sha256() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md != nullptr ? md : EVP_sha256();
}

struct ContextDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

EVP_MD_CTX* thread_context() {
  thread_local std::unique_ptr<EVP_MD_CTX, ContextDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx) throw std::runtime_error("OpenSSL: cannot allocate a digest context");
  return ctx.get();
}

// SHA-256 over the concatenation of `parts`; first four digest bytes, little-endian.
uint32_t hash_parts(std::initializer_list<std::string_view> parts) {
  EVP_MD_CTX* ctx = thread_context();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  bool ok = EVP_DigestInit_ex(ctx, sha256(), nullptr) == 1;
  for (std::string_view p : parts) ok = ok && EVP_DigestUpdate(ctx, p.data(), p.size()) == 1;
  ok = ok && EVP_DigestFinal_ex(ctx, digest, &length) == 1;
  if (!ok || length < 4) throw std::runtime_error("OpenSSL: SHA-256 failed");
  return static_cast<uint32_t>(digest[0]) | (static_cast<uint32_t>(digest[1]) << 8) |
         (static_cast<uint32_t>(digest[2]) << 16) | (static_cast<uint32_t>(digest[3]) << 24);
}

}  // namespace

uint32_t hash_checksum(std::string_view bytes) { return hash_parts({bytes}); }

uint32_t put_checksum(std::string_view object_type, std::string_view object_id, std::string_view data_json) {
  return hash_parts({"put.", object_type, ".", object_id, ".", data_json});
}

uint32_t remove_checksum(std::string_view subkey) { return hash_parts({"delete.", subkey}); }

}  // namespace powersync::protocol
