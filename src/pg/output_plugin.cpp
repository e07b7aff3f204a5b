// Logical decoding output plugin "powersync_pg": emits committed changes of the tables the deployed
// rules read, in the binary format of include/powersync/pg/change_format.h. Never the powersync schema.
// Option "tables": newline-separated "schema<TAB>name" patterns ('%' at the end matches any suffix);
// without it every user table is emitted. Callbacks are C-style (they may ereport; no C++ objects).
extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "nodes/bitmapset.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"

extern void _PG_output_plugin_init(OutputPluginCallbacks* cb);
}

#include "powersync/pg/change_format.h"
#include "powersync/pg/value_mapping.h"
#include "powersync/pg/worker.h"

namespace powersync::pg {
namespace {

struct TablePatternC {
  char* schema;
  char* name;
};

struct PluginState {
  MemoryContext change_context;  // reset after every change
  TablePatternC* patterns;       // NULL = every table
  int npatterns;
  bool txn_begun;                // BEGIN is written lazily, at the first emitted change
  Oid last_relid;                // relation message already sent for this relid / descriptor
  TupleDesc last_desc;
  RepOriginId own_origin;        // option "origin": the worker's origin, filtered in a walsender too
};

bool like_prefix(const char* pattern, const char* value) {
  size_t n = strlen(pattern);
  if (n > 0 && pattern[n - 1] == '%') return strncmp(pattern, value, n - 1) == 0;
  return strcmp(pattern, value) == 0;
}

void parse_tables_option(PluginState* st, const char* text) {
  // Count lines first, then split in place (a palloc'd copy).
  char* copy = pstrdup(text);
  int lines = 1;
  for (const char* p = copy; *p; ++p) lines += (*p == '\n');
  st->patterns = static_cast<TablePatternC*>(palloc0(sizeof(TablePatternC) * lines));
  st->npatterns = 0;
  char* save = nullptr;
  for (char* line = strtok_r(copy, "\n", &save); line; line = strtok_r(nullptr, "\n", &save)) {
    char* tab = strchr(line, '\t');
    if (!tab) continue;
    *tab = '\0';
    st->patterns[st->npatterns].schema = line;
    st->patterns[st->npatterns].name = tab + 1;
    st->npatterns++;
  }
}

void plugin_startup(LogicalDecodingContext* ctx, OutputPluginOptions* opt, bool is_init) {
  PluginState* st = static_cast<PluginState*>(palloc0(sizeof(PluginState)));
  st->change_context = AllocSetContextCreate(ctx->context, "powersync_pg change", ALLOCSET_DEFAULT_SIZES);
  ListCell* lc;
  foreach (lc, ctx->output_plugin_options) {
    DefElem* elem = static_cast<DefElem*>(lfirst(lc));
    if (strcmp(elem->defname, "tables") == 0 && elem->arg != nullptr) {
      parse_tables_option(st, strVal(elem->arg));
    } else if (strcmp(elem->defname, "origin") == 0 && elem->arg != nullptr) {
      st->own_origin = static_cast<RepOriginId>(strtoul(strVal(elem->arg), nullptr, 10));
    } else {
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                      errmsg("powersync_pg output plugin: unknown option \"%s\"", elem->defname),
                      errhint("The options are \"tables\" (newline-separated schema<TAB>name patterns) and \"origin\" (a replication origin id whose changes are skipped).")));
    }
  }
  opt->output_type = OUTPUT_PLUGIN_BINARY_OUTPUT;
  opt->receive_rewrites = false;
  ctx->output_plugin_private = st;
}

void plugin_shutdown(LogicalDecodingContext* ctx) {}

bool relation_wanted(PluginState* st, Relation rel) {
  if (rel->rd_rel->relkind != RELKIND_RELATION) return false;
  Oid nsp = RelationGetNamespace(rel);
  if (IsCatalogNamespace(nsp) || IsToastNamespace(nsp)) return false;
  char* nspname = get_namespace_name(nsp);
  if (nspname == nullptr || strcmp(nspname, "powersync") == 0 || strcmp(nspname, "information_schema") == 0)
    return false;
  if (st->patterns == nullptr) return true;
  const char* relname = RelationGetRelationName(rel);
  for (int i = 0; i < st->npatterns; ++i)
    if (like_prefix(st->patterns[i].schema, nspname) && like_prefix(st->patterns[i].name, relname)) return true;
  return false;
}

bool column_emitted(Form_pg_attribute att) { return !att->attisdropped && !att->attgenerated; }

void write_begin_if_needed(LogicalDecodingContext* ctx, PluginState* st, ReorderBufferTXN* txn) {
  if (st->txn_begun) return;
  OutputPluginPrepareWrite(ctx, false);
  put_u8(ctx->out, 'B');
  put_u64(ctx->out, txn->final_lsn);
  put_u32(ctx->out, txn->xid);
  OutputPluginWrite(ctx, false);
  st->txn_begun = true;
  st->last_relid = InvalidOid;
  st->last_desc = nullptr;
}

void write_relation(LogicalDecodingContext* ctx, PluginState* st, Relation rel) {
  TupleDesc desc = RelationGetDescr(rel);
  if (st->last_relid == RelationGetRelid(rel) && st->last_desc == desc) return;
  char ident = rel->rd_rel->relreplident;
  Bitmapset* key_attrs = nullptr;
  if (ident == REPLICA_IDENTITY_DEFAULT || ident == REPLICA_IDENTITY_INDEX)
    key_attrs = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);
  OutputPluginPrepareWrite(ctx, false);
  StringInfo out = ctx->out;
  put_u8(out, 'R');
  put_u32(out, RelationGetRelid(rel));
  char* nspname = get_namespace_name(RelationGetNamespace(rel));
  put_str(out, nspname, strlen(nspname));
  const char* relname = RelationGetRelationName(rel);
  put_str(out, relname, strlen(relname));
  put_u8(out, static_cast<uint8>(ident));
  uint16 ncols = 0;
  for (int i = 0; i < desc->natts; ++i) ncols += column_emitted(TupleDescAttr(desc, i)) ? 1 : 0;
  put_u16(out, ncols);
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    if (!column_emitted(att)) continue;
    put_str(out, NameStr(att->attname), strlen(NameStr(att->attname)));
    put_u32(out, att->atttypid);
    bool is_key = ident == REPLICA_IDENTITY_FULL ||
                  bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber, key_attrs);
    put_u8(out, is_key ? 1 : 0);
  }
  OutputPluginWrite(ctx, false);
  st->last_relid = RelationGetRelid(rel);
  st->last_desc = desc;
}

// A value stored out of line shows up here as an external datum: ONDISK when it is unchanged (its chunks
// are not in this transaction's WAL), INDIRECT when the reorder buffer reassembled it from the chunks the
// transaction wrote (ReorderBufferToastReplace). Either way the row version has a TOAST pointer, so the
// tuple is flagged (wire::kOutOfLine) and the worker keeps its image for the next update's markers.
void write_tuple(StringInfo out, TupleDesc desc, HeapTuple tuple) {
  uint16 ncols = 0;
  for (int i = 0; i < desc->natts; ++i) ncols += column_emitted(TupleDescAttr(desc, i)) ? 1 : 0;
  int count_at = out->len;
  put_u16(out, ncols);
  bool out_of_line = false;
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    if (!column_emitted(att)) continue;
    bool isnull;
    Datum v = heap_getattr(tuple, i + 1, desc, &isnull);
    if (!isnull && att->attlen == -1 && VARATT_IS_EXTERNAL(DatumGetPointer(v))) out_of_line = true;
    if (!isnull && att->attlen == -1 && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(v))) {
      put_u8(out, 'u');  // unchanged TOAST value: not in the WAL, the worker fills it in
      continue;
    }
    if (!isnull && att->attlen == -1) v = PointerGetDatum(PG_DETOAST_DATUM(v));
    append_sync_value(out, att->atttypid, v, isnull);
  }
  if (out_of_line) out->data[count_at + 1] |= static_cast<char>(wire::kOutOfLine >> 8);  // little-endian u16
}

void write_old_tuple(StringInfo out, Relation rel, ReorderBufferTupleBuf* old) {
  if (old == nullptr) { put_u8(out, 'n'); return; }
  put_u8(out, rel->rd_rel->relreplident == REPLICA_IDENTITY_FULL ? 'o' : 'k');
  write_tuple(out, RelationGetDescr(rel), &old->tuple);
}

void plugin_begin(LogicalDecodingContext* ctx, ReorderBufferTXN* txn) {
  static_cast<PluginState*>(ctx->output_plugin_private)->txn_begun = false;
}

void plugin_commit(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, XLogRecPtr commit_lsn) {
  PluginState* st = static_cast<PluginState*>(ctx->output_plugin_private);
  if (!st->txn_begun) return;  // nothing of interest in this transaction: emit nothing at all
  OutputPluginPrepareWrite(ctx, true);
  put_u8(ctx->out, 'C');
  put_u64(ctx->out, txn->end_lsn);
  OutputPluginWrite(ctx, true);
  st->txn_begun = false;
}

void plugin_change(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, Relation rel, ReorderBufferChange* change) {
  PluginState* st = static_cast<PluginState*>(ctx->output_plugin_private);
  MemoryContext old = MemoryContextSwitchTo(st->change_context);
  if (!relation_wanted(st, rel)) {
    MemoryContextSwitchTo(old);
    MemoryContextReset(st->change_context);
    return;
  }
  write_begin_if_needed(ctx, st, txn);
  write_relation(ctx, st, rel);
  OutputPluginPrepareWrite(ctx, true);
  StringInfo out = ctx->out;
  TupleDesc desc = RelationGetDescr(rel);
  switch (change->action) {
    case REORDER_BUFFER_CHANGE_INSERT:
      put_u8(out, 'I');
      put_u32(out, RelationGetRelid(rel));
      write_tuple(out, desc, &change->data.tp.newtuple->tuple);
      break;
    case REORDER_BUFFER_CHANGE_UPDATE:
      put_u8(out, 'U');
      put_u32(out, RelationGetRelid(rel));
      write_old_tuple(out, rel, change->data.tp.oldtuple);
      write_tuple(out, desc, &change->data.tp.newtuple->tuple);
      break;
    case REORDER_BUFFER_CHANGE_DELETE:
      put_u8(out, 'D');
      put_u32(out, RelationGetRelid(rel));
      write_old_tuple(out, rel, change->data.tp.oldtuple);
      break;
    default:
      Assert(false);
  }
  OutputPluginWrite(ctx, true);
  MemoryContextSwitchTo(old);
  MemoryContextReset(st->change_context);
}

void plugin_truncate(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, int nrelations, Relation relations[],
                     ReorderBufferChange* change) {
  PluginState* st = static_cast<PluginState*>(ctx->output_plugin_private);
  MemoryContext old = MemoryContextSwitchTo(st->change_context);
  int wanted = 0;
  for (int i = 0; i < nrelations; ++i) wanted += relation_wanted(st, relations[i]) ? 1 : 0;
  if (wanted == 0) {
    MemoryContextSwitchTo(old);
    MemoryContextReset(st->change_context);
    return;
  }
  write_begin_if_needed(ctx, st, txn);
  for (int i = 0; i < nrelations; ++i)
    if (relation_wanted(st, relations[i])) {
      st->last_relid = InvalidOid;  // a truncate may follow DDL; describe the table again
      write_relation(ctx, st, relations[i]);
    }
  OutputPluginPrepareWrite(ctx, true);
  put_u8(ctx->out, 'T');
  put_u16(ctx->out, static_cast<uint16>(wanted));
  for (int i = 0; i < nrelations; ++i)
    if (relation_wanted(st, relations[i])) put_u32(ctx->out, RelationGetRelid(relations[i]));
  OutputPluginWrite(ctx, true);
  MemoryContextSwitchTo(old);
  MemoryContextReset(st->change_context);
}

void plugin_message(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, XLogRecPtr message_lsn, bool transactional,
                    const char* prefix, Size message_size, const char* message) {
  if (strcmp(prefix, "powersync") != 0) return;
  OutputPluginPrepareWrite(ctx, true);
  put_u8(ctx->out, 'M');
  put_u8(ctx->out, transactional ? 1 : 0);
  put_u64(ctx->out, message_lsn);
  put_str(ctx->out, prefix, strlen(prefix));
  put_str(ctx->out, message, message_size);
  OutputPluginWrite(ctx, true);
}

// The replication worker's own transactions (see use_own_origin in worker.cpp): worker_origin when
// decoding runs in the worker (peek), the "origin" option when a walsender decodes for it (stream).
bool plugin_filter_origin(LogicalDecodingContext* ctx, RepOriginId origin_id) {
  if (origin_id == InvalidRepOriginId) return false;
  PluginState* st = static_cast<PluginState*>(ctx->output_plugin_private);
  return origin_id == worker_origin || (st != nullptr && origin_id == st->own_origin);
}

}  // namespace
}  // namespace powersync::pg

void _PG_output_plugin_init(OutputPluginCallbacks* cb) {
  using namespace powersync::pg;
  cb->startup_cb = plugin_startup;
  cb->begin_cb = plugin_begin;
  cb->change_cb = plugin_change;
  cb->truncate_cb = plugin_truncate;
  cb->commit_cb = plugin_commit;
  cb->message_cb = plugin_message;
  cb->filter_by_origin_cb = plugin_filter_origin;
  cb->shutdown_cb = plugin_shutdown;
}
