// SPI helpers for the IMMV code (include/powersync/pg/immv_spi.h).
#include "powersync/pg/immv_spi.h"

extern "C" {
#include "utils/builtins.h"
#include "utils/lsyscache.h"
}

namespace powersync::pg::immv {

uint64 spi_exec(const std::string& sql) {
  return pg_call([&] {
    int rc = SPI_execute(sql.c_str(), false, 0);
    if (rc < 0) elog(ERROR, "SPI_execute failed (%d): %s", rc, sql.c_str());
    return SPI_processed;
  });
}

std::string query_one(const std::string& sql) {
  char* value = pg_call([&] {
    int rc = SPI_execute(sql.c_str(), false, 1);
    if (rc < 0) elog(ERROR, "SPI_execute failed (%d): %s", rc, sql.c_str());
    return SPI_processed > 0 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : (char*)nullptr;
  });
  return value ? std::string(value) : std::string();
}

std::string qualified_name(Oid relid) {
  return pg_call([&] {
    char* rel = get_rel_name(relid);
    char* nsp = get_namespace_name(get_rel_namespace(relid));
    if (!rel || !nsp) elog(ERROR, "relation %u does not exist", relid);
    return quote_qualified_identifier(nsp, rel);
  });
}

}  // namespace powersync::pg::immv
