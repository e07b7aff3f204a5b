// Conformance runner: one case (or one check of a group) and the actions it can run.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

namespace conformance {

// A check and the group it belongs to: keys missing in the check are taken from the group.
struct CaseView {
  YAML::Node own;
  YAML::Node group;
  YAML::Node get(const char* key) const {
    if (own.IsMap() && own[key]) return own[key];
    if (group.IsMap() && group[key]) return group[key];
    return YAML::Node(YAML::NodeType::Undefined);
  }
  bool has(const char* key) const { return get(key).IsDefined(); }
};

// Runs the case; returns "" on success, else what went wrong.
std::string run_case(const CaseView& c);

// Expression cases (`expr:`), in expression_checks.cpp.
std::string run_expression_case(const CaseView& c);

}  // namespace conformance
