// PostGIS geometry functions (st_asgeojson, st_astext, st_x, st_y) over WKB / EWKB given as hex
// text or a blob, formatted like the `wkx` library the reference uses (WKT numbers via JS
// toString, GeoJSON numbers via JSONBig so integral coordinates print as `1.0`).
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "functions.h"
#include "powersync/error.h"
#include "powersync/protocol/json_writer.h"

namespace powersync::rules::functions {
namespace {

enum GeometryType { kPoint = 1, kLineString, kPolygon, kMultiPoint, kMultiLineString, kMultiPolygon, kCollection };

struct Geometry {
  int type = kPoint;
  bool has_z = false, has_m = false;
  std::vector<double> point;                      // Point: x y [z] [m]; empty = POINT EMPTY
  std::vector<std::vector<double>> points;        // LineString: coordinates
  std::vector<std::vector<std::vector<double>>> rings;  // Polygon
  std::vector<Geometry> parts;                    // Multi* and collections
};

constexpr int kMaxDepth = 32;
constexpr uint32_t kMaxCount = 1u << 24;

class WkbReader {
 public:
  explicit WkbReader(std::string_view bytes) : b_(bytes) {}

  Geometry read(int depth = 0) {
    if (depth > kMaxDepth) fail();
    bool little = byte() == 1;
    uint32_t raw = u32(little);
    Geometry g;
    // EWKB flags (PostGIS) and ISO WKB type codes (1000 = Z, 2000 = M, 3000 = ZM).
    g.has_z = raw & 0x80000000u;
    g.has_m = raw & 0x40000000u;
    if (raw & 0x20000000u) u32(little);  // SRID
    uint32_t type = raw & 0x0FFFFFFFu;
    if (type >= 3000) g.has_z = g.has_m = true, type -= 3000;
    else if (type >= 2000) g.has_m = true, type -= 2000;
    else if (type >= 1000) g.has_z = true, type -= 1000;
    if (type < 1 || type > 7) fail();
    g.type = static_cast<int>(type);
    switch (g.type) {
      case kPoint: {
        g.point = coordinate(g, little);
        bool empty = true;
        for (double d : g.point)
          if (d == d) empty = false;  // NaN coordinates encode POINT EMPTY
        if (empty) g.point.clear();
        break;
      }
      case kLineString: g.points = coordinates(g, little); break;
      case kPolygon: {
        uint32_t n = count(little);
        for (uint32_t i = 0; i < n; ++i) g.rings.push_back(coordinates(g, little));
        break;
      }
      default: {
        uint32_t n = count(little);
        for (uint32_t i = 0; i < n; ++i) g.parts.push_back(read(depth + 1));
      }
    }
    return g;
  }
  bool at_end() const { return pos_ == b_.size(); }

 private:
  [[noreturn]] static void fail() { throw invalid_input("Invalid geometry: not valid WKB"); }
  uint8_t byte() {
    if (pos_ >= b_.size()) fail();
    return static_cast<uint8_t>(b_[pos_++]);
  }
  uint32_t u32(bool little) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      uint32_t c = byte();
      v |= little ? c << (8 * i) : c << (8 * (3 - i));
    }
    return v;
  }
  double f64(bool little) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) {
      uint64_t c = byte();
      v |= little ? c << (8 * i) : c << (8 * (7 - i));
    }
    double d;
    std::memcpy(&d, &v, sizeof d);
    return d;
  }
  uint32_t count(bool little) {
    uint32_t n = u32(little);
    if (n > kMaxCount || n > b_.size()) fail();
    return n;
  }
  std::vector<double> coordinate(const Geometry& g, bool little) {
    int dims = 2 + (g.has_z ? 1 : 0) + (g.has_m ? 1 : 0);
    std::vector<double> c;
    for (int i = 0; i < dims; ++i) c.push_back(f64(little));
    return c;
  }
  std::vector<std::vector<double>> coordinates(const Geometry& g, bool little) {
    uint32_t n = count(little);
    std::vector<std::vector<double>> out;
    for (uint32_t i = 0; i < n; ++i) out.push_back(coordinate(g, little));
    return out;
  }

  std::string_view b_;
  size_t pos_ = 0;
};

// NULL -> nullopt; TEXT is hex (decoding stops at the first non-hex pair, like Buffer.from(hex));
// BLOB as is; other types are not geometries.
bool geometry_bytes(const Value& v, std::string& bytes) {
  if (v.is_blob()) {
    bytes = v.as_blob();
    return true;
  }
  if (!v.is_text()) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const std::string& s = v.as_text();
  for (size_t i = 0; i + 1 < s.size(); i += 2) {
    int hi = nibble(s[i]), lo = nibble(s[i + 1]);
    if (hi < 0 || lo < 0) break;
    bytes.push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

std::unique_ptr<Geometry> parse_geometry(const Value& v) {
  std::string bytes;
  if (!geometry_bytes(v, bytes)) return nullptr;
  WkbReader reader(bytes);
  return std::make_unique<Geometry>(reader.read());
}

const char* wkt_name(int type) {
  static const char* kNames[] = {"", "POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING",
                                 "MULTIPOLYGON", "GEOMETRYCOLLECTION"};
  return kNames[type];
}

const char* geojson_name(int type) {
  static const char* kNames[] = {"", "Point", "LineString", "Polygon", "MultiPoint", "MultiLineString",
                                 "MultiPolygon", "GeometryCollection"};
  return kNames[type];
}

void wkt_coordinate(std::string& out, const std::vector<double>& c) {
  for (size_t i = 0; i < c.size(); ++i) {
    if (i) out.push_back(' ');
    protocol::append_js_number(out, c[i]);
  }
}

void wkt_coordinates(std::string& out, const std::vector<std::vector<double>>& cs) {
  out.push_back('(');
  for (size_t i = 0; i < cs.size(); ++i) {
    if (i) out.push_back(',');
    wkt_coordinate(out, cs[i]);
  }
  out.push_back(')');
}

void wkt_body(std::string& out, const Geometry& g);

// wkx's type prefix: "POINT", "POINT Z ", "POINT EMPTY", "POINT Z EMPTY".
void wkt(std::string& out, const Geometry& g) {
  out += wkt_name(g.type);
  if (g.has_z && g.has_m) out += " ZM ";
  else if (g.has_z) out += " Z ";
  else if (g.has_m) out += " M ";
  bool empty = (g.type == kPoint && g.point.empty()) || (g.type == kLineString && g.points.empty()) ||
               (g.type == kPolygon && g.rings.empty()) || (g.type > kPolygon && g.parts.empty());
  if (empty) {
    if (!g.has_z && !g.has_m) out.push_back(' ');
    out += "EMPTY";
    return;
  }
  wkt_body(out, g);
}

void wkt_body(std::string& out, const Geometry& g) {
  switch (g.type) {
    case kPoint:
      out.push_back('(');
      wkt_coordinate(out, g.point);
      out.push_back(')');
      break;
    case kLineString: wkt_coordinates(out, g.points); break;
    case kPolygon:
      out.push_back('(');
      for (size_t i = 0; i < g.rings.size(); ++i) {
        if (i) out.push_back(',');
        wkt_coordinates(out, g.rings[i]);
      }
      out.push_back(')');
      break;
    case kCollection:
      out.push_back('(');
      for (size_t i = 0; i < g.parts.size(); ++i) {
        if (i) out.push_back(',');
        wkt(out, g.parts[i]);
      }
      out.push_back(')');
      break;
    default:  // multi geometries list their parts' bodies
      out.push_back('(');
      for (size_t i = 0; i < g.parts.size(); ++i) {
        if (i) out.push_back(',');
        wkt_body(out, g.parts[i]);
      }
      out.push_back(')');
  }
}

void json_number(std::string& out, double d) {
  protocol::append_json_value(out, Value::real(d), protocol::RealFormat::RowJson);
}

void json_coordinate(std::string& out, const std::vector<double>& c) {
  out.push_back('[');
  // GeoJSON carries x, y and z only.
  size_t n = c.size() > 3 ? 3 : c.size();
  for (size_t i = 0; i < n; ++i) {
    if (i) out.push_back(',');
    json_number(out, c[i]);
  }
  out.push_back(']');
}

void json_coordinates(std::string& out, const std::vector<std::vector<double>>& cs) {
  out.push_back('[');
  for (size_t i = 0; i < cs.size(); ++i) {
    if (i) out.push_back(',');
    json_coordinate(out, cs[i]);
  }
  out.push_back(']');
}

void json_coordinates_of(std::string& out, const Geometry& g) {
  switch (g.type) {
    case kPoint: json_coordinate(out, g.point); break;
    case kLineString: json_coordinates(out, g.points); break;
    case kPolygon:
      out.push_back('[');
      for (size_t i = 0; i < g.rings.size(); ++i) {
        if (i) out.push_back(',');
        json_coordinates(out, g.rings[i]);
      }
      out.push_back(']');
      break;
    default:
      out.push_back('[');
      for (size_t i = 0; i < g.parts.size(); ++i) {
        if (i) out.push_back(',');
        json_coordinates_of(out, g.parts[i]);
      }
      out.push_back(']');
  }
}

void geojson(std::string& out, const Geometry& g) {
  out += "{\"type\":\"";
  out += geojson_name(g.type);
  if (g.type == kCollection) {
    out += "\",\"geometries\":[";
    for (size_t i = 0; i < g.parts.size(); ++i) {
      if (i) out.push_back(',');
      geojson(out, g.parts[i]);
    }
    out += "]}";
    return;
  }
  out += "\",\"coordinates\":";
  json_coordinates_of(out, g);
  out.push_back('}');
}

}  // namespace

Value st_asgeojson(const Value* const* args, size_t) {
  auto g = parse_geometry(*args[0]);
  if (!g) return Value::null();
  std::string out;
  geojson(out, *g);
  return Value::text(std::move(out));
}

Value st_astext(const Value* const* args, size_t) {
  auto g = parse_geometry(*args[0]);
  if (!g) return Value::null();
  std::string out;
  wkt(out, *g);
  return Value::text(std::move(out));
}

Value st_x(const Value* const* args, size_t) {
  auto g = parse_geometry(*args[0]);
  if (!g || g->type != kPoint || g->point.empty()) return Value::null();
  return Value::real(g->point[0]);
}

Value st_y(const Value* const* args, size_t) {
  auto g = parse_geometry(*args[0]);
  if (!g || g->type != kPoint || g->point.empty()) return Value::null();
  return Value::real(g->point[1]);
}

}  // namespace powersync::rules::functions
