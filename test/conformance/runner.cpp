// Data-driven conformance runner: reads test/conformance/cases/*.yaml (format in README.md), runs
// every case against the sync rules engine and prints failures plus "N passed, M failed".
#include <dirent.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "case_values.h"
#include "checks.h"

namespace conformance {
namespace {

std::vector<std::string> default_files() {
  std::vector<std::string> files;
  const std::string dir = "test/conformance/cases";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.size() > 5 && name.substr(name.size() - 5) == ".yaml") files.push_back(dir + "/" + name);
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  return files;
}

struct Totals {
  int passed = 0;
  int failed = 0;
  int skipped = 0;
};

void run_one(const std::string& file, const std::string& name, const CaseView& view, bool verbose,
             Totals& totals) {
  if (view.own.IsMap() && view.own["skip"]) {
    // A reference behaviour we do not reproduce yet: listed, not counted.
    ++totals.skipped;
    std::cout << "skip - " << file << ": " << name << " (" << view.own["skip"].as<std::string>() << ")\n";
    return;
  }
  std::string failure;
  try {
    failure = run_case(view);
  } catch (const std::exception& e) {
    failure = std::string("exception: ") + e.what();
  }
  if (failure.empty()) {
    ++totals.passed;
    if (verbose) std::cout << "ok   - " << file << ": " << name << "\n";
  } else {
    ++totals.failed;
    std::cout << "FAIL - " << file << ": " << name << "\n       " << failure << "\n";
  }
}

void run_file(const std::string& file, const std::string& filter, bool verbose, Totals& totals) {
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(file);
  } catch (const std::exception& e) {
    ++totals.failed;
    std::cout << "FAIL - " << file << ": cannot load case file: " << e.what() << "\n";
    return;
  }
  const YAML::Node cases = doc["cases"];
  if (!cases.IsSequence()) {
    ++totals.failed;
    std::cout << "FAIL - " << file << ": no `cases:` list\n";
    return;
  }
  std::map<std::string, int> seen;
  for (const auto& c : cases) {
    std::string name = c["name"] ? c["name"].as<std::string>() : std::string("(unnamed)");
    if (seen[name]++) name += " #" + std::to_string(seen[name]);
    if (c["checks"]) {
      int index = 0;
      for (const auto& check : c["checks"]) {
        ++index;
        std::string check_name =
            name + " / " + (check["name"] ? check["name"].as<std::string>() : "#" + std::to_string(index));
        if (!filter.empty() && check_name.find(filter) == std::string::npos) continue;
        run_one(file, check_name, CaseView{check, c}, verbose, totals);
      }
    } else {
      if (!filter.empty() && name.find(filter) == std::string::npos) continue;
      run_one(file, name, CaseView{c, YAML::Node()}, verbose, totals);
    }
  }
}

}  // namespace
}  // namespace conformance

int main(int argc, char** argv) {
  bool verbose = false;
  std::string filter;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "-v")) verbose = true;
    else if (!std::strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
    else files.push_back(argv[i]);
  }
  if (files.empty()) files = conformance::default_files();
  conformance::Totals totals;
  for (const auto& f : files) conformance::run_file(f, filter, verbose, totals);
  if (totals.skipped) std::cout << totals.skipped << " skipped (known gaps, see the skip reasons above)\n";
  std::cout << totals.passed << " passed, " << totals.failed << " failed" << std::endl;
  return totals.failed == 0 && totals.passed > 0 ? 0 : 1;
}
