// Logical decoding output plugin "powersync_pg": emits committed changes of the tables the deployed
// rules read, in the binary format of include/powersync/pg/change_format.h. Never the powersync schema.
// Option "tables": newline-separated "schema<TAB>name" patterns ('%' at the end matches any suffix);
// without it every user table is emitted. Option "batch" '1' (a walsender's reader): length-prefixed
// messages, several per CopyData (see change_format.h). Callbacks are C-style (they may ereport; no C++ objects).
extern "C" {
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "nodes/bitmapset.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "replication/walsender.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
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
  Oid last_relid;                // relation message already sent for this relid / descriptor / entry build
  TupleDesc last_desc;
  uint32 last_gen;
  RepOriginId own_origin;        // option "origin": the worker's origin, filtered in a walsender too
  bool batch;                    // option "batch" '1' (walsender only): several messages per write
  bool pending;                  // batch: a write is prepared and holds messages not yet written
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

// ---- Per-relation cache: what every change of a relation needs, worked out once per relcache entry ----
// (whether the table is emitted at all, its 'R' message, the emitted columns and their value mappings).
// An entry is rebuilt after a relcache invalidation of its relation (DDL, replica identity; decoding
// executes the invalidations of the transactions it passes), after any namespace or type change, and
// when the relation's descriptor is not the one it was built for. The cache lives per backend (a
// walsender, or the worker peeking) and is emptied when a decoding session starts (its "tables" option
// decides what is emitted).
struct ColumnOut {
  int attidx;  // 0-based position in the descriptor
  int16 attlen;
  ColumnMapping map;
};

struct RelEntry {
  Oid relid;  // hash key
  bool valid;
  bool wanted;
  uint32 gen;  // build number (unique per backend): a rebuilt entry sends its relation message again
  TupleDesc desc;
  int ncols;
  ColumnOut* cols;
  Datum* values;  // deform buffers, desc->natts each
  bool* isnull;
  char* relmsg;  // the 'R' message
  int relmsg_len;
  MemoryContext cxt;  // holds the above (and the output functions' caches)
};

MemoryContext rel_cache_cxt = nullptr;
HTAB* rel_cache = nullptr;
RelEntry* last_entry = nullptr;
uint32 rel_cache_gen = 0;
bool rel_cache_callbacks = false;

void invalidate_all() {
  if (rel_cache == nullptr) return;
  HASH_SEQ_STATUS seq;
  hash_seq_init(&seq, rel_cache);
  while (RelEntry* e = static_cast<RelEntry*>(hash_seq_search(&seq))) e->valid = false;
}

void relcache_callback(Datum, Oid relid) {
  if (rel_cache == nullptr) return;
  if (relid == InvalidOid) { invalidate_all(); return; }
  RelEntry* e = static_cast<RelEntry*>(hash_search(rel_cache, &relid, HASH_FIND, nullptr));
  if (e != nullptr) e->valid = false;
}

void syscache_callback(Datum, int, uint32) { invalidate_all(); }

void reset_rel_cache() {
  if (!rel_cache_callbacks) {
    CacheRegisterRelcacheCallback(relcache_callback, 0);
    CacheRegisterSyscacheCallback(NAMESPACEOID, syscache_callback, 0);
    CacheRegisterSyscacheCallback(TYPEOID, syscache_callback, 0);
    rel_cache_callbacks = true;
  }
  rel_cache = nullptr;
  last_entry = nullptr;
  if (rel_cache_cxt == nullptr)
    rel_cache_cxt = AllocSetContextCreate(TopMemoryContext, "powersync_pg relations", ALLOCSET_DEFAULT_SIZES);
  else
    MemoryContextReset(rel_cache_cxt);
  HASHCTL info;
  memset(&info, 0, sizeof(info));
  info.keysize = sizeof(Oid);
  info.entrysize = sizeof(RelEntry);
  info.hcxt = rel_cache_cxt;
  rel_cache = hash_create("powersync_pg relations", 64, &info, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

void build_entry(PluginState* st, RelEntry* e, Relation rel) {
  e->valid = false;
  if (e->cxt == nullptr)
    e->cxt = AllocSetContextCreate(rel_cache_cxt, "powersync_pg relation", ALLOCSET_SMALL_SIZES);
  else
    MemoryContextReset(e->cxt);
  MemoryContext old = MemoryContextSwitchTo(e->cxt);
  TupleDesc desc = RelationGetDescr(rel);
  e->gen = ++rel_cache_gen;
  e->desc = desc;
  e->ncols = 0;
  e->cols = nullptr;
  e->relmsg = nullptr;
  e->relmsg_len = 0;
  e->wanted = relation_wanted(st, rel);
  if (e->wanted) {
    e->values = static_cast<Datum*>(palloc(sizeof(Datum) * Max(desc->natts, 1)));
    e->isnull = static_cast<bool*>(palloc(sizeof(bool) * Max(desc->natts, 1)));
    e->cols = static_cast<ColumnOut*>(palloc0(sizeof(ColumnOut) * Max(desc->natts, 1)));
    for (int i = 0; i < desc->natts; ++i) {
      Form_pg_attribute att = TupleDescAttr(desc, i);
      if (!column_emitted(att)) continue;
      ColumnOut* c = &e->cols[e->ncols++];
      c->attidx = i;
      c->attlen = att->attlen;
      init_column_mapping(&c->map, att->atttypid);
    }
    char ident = rel->rd_rel->relreplident;
    Bitmapset* key_attrs = nullptr;
    if (ident == REPLICA_IDENTITY_DEFAULT || ident == REPLICA_IDENTITY_INDEX)
      key_attrs = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);
    StringInfoData out;
    initStringInfo(&out);
    put_u8(&out, 'R');
    put_u32(&out, RelationGetRelid(rel));
    char* nspname = get_namespace_name(RelationGetNamespace(rel));
    put_str(&out, nspname, strlen(nspname));
    const char* relname = RelationGetRelationName(rel);
    put_str(&out, relname, strlen(relname));
    put_u8(&out, static_cast<uint8>(ident));
    put_u16(&out, static_cast<uint16>(e->ncols));
    for (int k = 0; k < e->ncols; ++k) {
      Form_pg_attribute att = TupleDescAttr(desc, e->cols[k].attidx);
      put_str(&out, NameStr(att->attname), strlen(NameStr(att->attname)));
      put_u32(&out, att->atttypid);
      bool is_key = ident == REPLICA_IDENTITY_FULL ||
                    bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber, key_attrs);
      put_u8(&out, is_key ? 1 : 0);
    }
    e->relmsg = out.data;
    e->relmsg_len = out.len;
  }
  MemoryContextSwitchTo(old);
  e->valid = true;
}

RelEntry* relation_entry(PluginState* st, Relation rel) {
  Oid relid = RelationGetRelid(rel);
  RelEntry* e = last_entry;
  if (e == nullptr || e->relid != relid) {
    bool found;
    e = static_cast<RelEntry*>(hash_search(rel_cache, &relid, HASH_ENTER, &found));
    if (!found) {
      e->valid = false;
      e->cxt = nullptr;
    }
    last_entry = e;
  }
  if (!e->valid || e->desc != RelationGetDescr(rel)) build_entry(st, e, rel);
  return e;
}

void plugin_startup(LogicalDecodingContext* ctx, OutputPluginOptions* opt, bool is_init) {
  PluginState* st = static_cast<PluginState*>(palloc0(sizeof(PluginState)));
  st->change_context = AllocSetContextCreate(ctx->context, "powersync_pg change", ALLOCSET_DEFAULT_SIZES);
  ListCell* lc;
  foreach (lc, ctx->output_plugin_options) {
    DefElem* elem = static_cast<DefElem*>(lfirst(lc));
    if (strcmp(elem->defname, "tables") == 0 && elem->arg != nullptr) {
      parse_tables_option(st, strVal(elem->arg));
    } else if (strcmp(elem->defname, "batch") == 0 && elem->arg != nullptr) {
      st->batch = strcmp(strVal(elem->arg), "1") == 0 && am_walsender;
    } else if (strcmp(elem->defname, "origin") == 0 && elem->arg != nullptr) {
      st->own_origin = static_cast<RepOriginId>(strtoul(strVal(elem->arg), nullptr, 10));
    } else {
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                      errmsg("powersync_pg output plugin: unknown option \"%s\"", elem->defname),
                      errhint("The options are \"tables\" (newline-separated schema<TAB>name patterns) and \"origin\" (a replication origin id whose changes are skipped).")));
    }
  }
  reset_rel_cache();
  opt->output_type = OUTPUT_PLUGIN_BINARY_OUTPUT;
  opt->receive_rewrites = false;
  ctx->output_plugin_private = st;
}

void plugin_shutdown(LogicalDecodingContext* ctx) {
  // The entries' relmsg/mappings stay in rel_cache_cxt until the next session starts (or the backend ends).
  last_entry = nullptr;
}

// One message of the stream. Without "batch", each message is one write (one CopyData in a walsender, one
// row when peeked). With it, a write holds a sequence of u32 length | message (change_format.h), and is
// written when it reaches kBatchBytes, at the transaction's commit, or for a message outside a
// transaction: the walsender sends (a syscall) per write, and its reader receives per write.
constexpr int kBatchBytes = 64 * 1024;

int message_begin(LogicalDecodingContext* ctx, PluginState* st) {
  if (!st->batch) {
    OutputPluginPrepareWrite(ctx, true);
    return -1;
  }
  if (!st->pending) {
    OutputPluginPrepareWrite(ctx, true);
    st->pending = true;
  }
  int at = ctx->out->len;
  put_u32(ctx->out, 0);
  return at;
}

void batch_flush(LogicalDecodingContext* ctx, PluginState* st) {
  if (!st->pending) return;
  OutputPluginWrite(ctx, true);
  st->pending = false;
}

void message_end(LogicalDecodingContext* ctx, PluginState* st, int at, bool flush) {
  if (!st->batch) {
    OutputPluginWrite(ctx, true);
    return;
  }
  uint32 len = static_cast<uint32>(ctx->out->len - at - 4);
  memcpy(ctx->out->data + at, &len, 4);
  if (flush || ctx->out->len >= kBatchBytes) batch_flush(ctx, st);
}

void write_begin_if_needed(LogicalDecodingContext* ctx, PluginState* st, ReorderBufferTXN* txn) {
  if (st->txn_begun) return;
  int at = message_begin(ctx, st);
  put_u8(ctx->out, 'B');
  put_u64(ctx->out, txn->final_lsn);
  put_u32(ctx->out, txn->xid);
  message_end(ctx, st, at, false);
  st->txn_begun = true;
  st->last_relid = InvalidOid;
  st->last_desc = nullptr;
}

void write_relation(LogicalDecodingContext* ctx, PluginState* st, RelEntry* e) {
  if (st->last_relid == e->relid && st->last_desc == e->desc && st->last_gen == e->gen) return;
  int at = message_begin(ctx, st);
  put_bytes(ctx->out, e->relmsg, e->relmsg_len);
  message_end(ctx, st, at, false);
  st->last_relid = e->relid;
  st->last_desc = e->desc;
  st->last_gen = e->gen;
}

// A value stored out of line shows up here as an external datum: ONDISK when it is unchanged (its chunks
// are not in this transaction's WAL), INDIRECT when the reorder buffer reassembled it from the chunks the
// transaction wrote (ReorderBufferToastReplace). Either way the row version has a TOAST pointer, so the
// tuple is flagged (wire::kOutOfLine) and the worker keeps its image for the next update's markers.
// Inline values are mapped as they are (short headers included: the mappings read packed varlenas).
void write_tuple(StringInfo out, RelEntry* e, HeapTuple tuple) {
  heap_deform_tuple(tuple, e->desc, e->values, e->isnull);
  int count_at = out->len;
  put_u16(out, static_cast<uint16>(e->ncols));
  bool out_of_line = false;
  for (int k = 0; k < e->ncols; ++k) {
    ColumnOut* c = &e->cols[k];
    if (e->isnull[c->attidx]) { put_u8(out, 'n'); continue; }
    Datum v = e->values[c->attidx];
    if (c->attlen == -1) {
      struct varlena* p = reinterpret_cast<struct varlena*>(DatumGetPointer(v));
      if (VARATT_IS_EXTERNAL(p)) {
        out_of_line = true;
        if (VARATT_IS_EXTERNAL_ONDISK(p)) {
          put_u8(out, 'u');  // unchanged TOAST value: not in the WAL, the worker fills it in
          continue;
        }
      }
      if (VARATT_IS_EXTERNAL(p) || VARATT_IS_COMPRESSED(p)) v = PointerGetDatum(detoast_attr(p));
    }
    append_column_value(out, &c->map, v, false);
  }
  if (out_of_line) out->data[count_at + 1] |= static_cast<char>(wire::kOutOfLine >> 8);  // little-endian u16
}

void write_old_tuple(StringInfo out, Relation rel, RelEntry* e, ReorderBufferTupleBuf* old) {
  if (old == nullptr) { put_u8(out, 'n'); return; }
  put_u8(out, rel->rd_rel->relreplident == REPLICA_IDENTITY_FULL ? 'o' : 'k');
  write_tuple(out, e, &old->tuple);
}

void plugin_begin(LogicalDecodingContext* ctx, ReorderBufferTXN* txn) {
  static_cast<PluginState*>(ctx->output_plugin_private)->txn_begun = false;
}

void plugin_commit(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, XLogRecPtr commit_lsn) {
  PluginState* st = static_cast<PluginState*>(ctx->output_plugin_private);
  if (!st->txn_begun) {  // nothing of interest in this transaction: emit nothing at all
    batch_flush(ctx, st);  // (but what its transactional messages left in the batch)
    return;
  }
  int at = message_begin(ctx, st);
  put_u8(ctx->out, 'C');
  put_u64(ctx->out, txn->end_lsn);
  message_end(ctx, st, at, true);
  st->txn_begun = false;
}

void plugin_change(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, Relation rel, ReorderBufferChange* change) {
  PluginState* st = static_cast<PluginState*>(ctx->output_plugin_private);
  RelEntry* e = relation_entry(st, rel);
  if (!e->wanted) return;
  MemoryContext old = MemoryContextSwitchTo(st->change_context);
  write_begin_if_needed(ctx, st, txn);
  write_relation(ctx, st, e);
  int at = message_begin(ctx, st);
  StringInfo out = ctx->out;
  switch (change->action) {
    case REORDER_BUFFER_CHANGE_INSERT:
      put_u8(out, 'I');
      put_u32(out, e->relid);
      write_tuple(out, e, &change->data.tp.newtuple->tuple);
      break;
    case REORDER_BUFFER_CHANGE_UPDATE:
      put_u8(out, 'U');
      put_u32(out, e->relid);
      write_old_tuple(out, rel, e, change->data.tp.oldtuple);
      write_tuple(out, e, &change->data.tp.newtuple->tuple);
      break;
    case REORDER_BUFFER_CHANGE_DELETE:
      put_u8(out, 'D');
      put_u32(out, e->relid);
      write_old_tuple(out, rel, e, change->data.tp.oldtuple);
      break;
    default:
      Assert(false);
  }
  message_end(ctx, st, at, false);
  MemoryContextSwitchTo(old);
  MemoryContextReset(st->change_context);
}

void plugin_truncate(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, int nrelations, Relation relations[],
                     ReorderBufferChange* change) {
  PluginState* st = static_cast<PluginState*>(ctx->output_plugin_private);
  int wanted = 0;
  for (int i = 0; i < nrelations; ++i) wanted += relation_entry(st, relations[i])->wanted ? 1 : 0;
  if (wanted == 0) return;
  MemoryContext old = MemoryContextSwitchTo(st->change_context);
  write_begin_if_needed(ctx, st, txn);
  for (int i = 0; i < nrelations; ++i) {
    RelEntry* e = relation_entry(st, relations[i]);
    if (e->wanted) {
      st->last_relid = InvalidOid;  // a truncate may follow DDL; describe the table again
      write_relation(ctx, st, e);
    }
  }
  int at = message_begin(ctx, st);
  put_u8(ctx->out, 'T');
  put_u16(ctx->out, static_cast<uint16>(wanted));
  for (int i = 0; i < nrelations; ++i)
    if (relation_entry(st, relations[i])->wanted) put_u32(ctx->out, RelationGetRelid(relations[i]));
  message_end(ctx, st, at, false);
  MemoryContextSwitchTo(old);
  MemoryContextReset(st->change_context);
}

void plugin_message(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, XLogRecPtr message_lsn, bool transactional,
                    const char* prefix, Size message_size, const char* message) {
  if (strcmp(prefix, "powersync") != 0) return;
  PluginState* st = static_cast<PluginState*>(ctx->output_plugin_private);
  int at = message_begin(ctx, st);
  put_u8(ctx->out, 'M');
  put_u8(ctx->out, transactional ? 1 : 0);
  put_u64(ctx->out, message_lsn);
  put_str(ctx->out, prefix, strlen(prefix));
  put_str(ctx->out, message, message_size);
  message_end(ctx, st, at, !transactional);
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
