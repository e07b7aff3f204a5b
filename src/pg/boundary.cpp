// Raising errors across the C++/Postgres boundary (see include/powersync/pg/boundary.h).
#include "powersync/pg/boundary.h"

extern "C" {
#include "utils/errcodes.h"
}

namespace powersync::pg {

int sqlstate_for(Error::Kind kind) {
  switch (kind) {
    case Error::Kind::InvalidInput: return ERRCODE_INVALID_PARAMETER_VALUE;
    case Error::Kind::NotSupported: return ERRCODE_FEATURE_NOT_SUPPORTED;
    case Error::Kind::Internal: return ERRCODE_INTERNAL_ERROR;
  }
  return ERRCODE_INTERNAL_ERROR;
}

void raise_pending(ErrorData* pg_error, int sqlstate, const char* message, const char* detail, const char* hint) {
  if (pg_error) ReThrowError(pg_error);
  ereport(ERROR, (errcode(sqlstate), errmsg("%s", message), detail ? errdetail("%s", detail) : 0,
                  hint ? errhint("%s", hint) : 0));
  pg_unreachable();
}

}  // namespace powersync::pg
