// Library entry: module magic and _PG_init (registers what the extension needs at preload time).
extern "C" {
#include "postgres.h"
#include "fmgr.h"

PG_MODULE_MAGIC;

void _PG_init(void);
}

void _PG_init(void) {}
