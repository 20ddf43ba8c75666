#include "controller/schedule/cron.h"

#include <array>
#include <cctype>
#include <charconv>
#include <sstream>
#include <vector>

#include "faults/core/duration.h"

namespace faultline::controller {

namespace {

using namespace std::chrono;

std::string Upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    out.emplace_back(s.substr(start, at == std::string_view::npos ? s.npos : at - start));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return out;
}

struct FieldSpec {
  const char* name;
  int min;
  int max;
  // Names for min, min+1, ... (months: JAN = 1; weekdays: SUN = 0).
  std::vector<std::string> names;
  bool day = false;  // `?` allowed
};

const std::array<FieldSpec, 6>& Fields() {
  static const std::array<FieldSpec, 6> f = {{
      {"second", 0, 59, {}},
      {"minute", 0, 59, {}},
      {"hour", 0, 23, {}},
      {"day of month", 1, 31, {}, true},
      {"month",
       1,
       12,
       {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
      // 7 is accepted as Sunday, as most crons do.
      {"day of week", 0, 7, {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}, true},
  }};
  return f;
}

bool Number(std::string_view s, int* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool Value(const FieldSpec& f, std::string_view s, int* out, std::string* why) {
  if (Number(s, out)) {
    if (*out < f.min || *out > f.max) {
      *why = std::string(f.name) + " " + std::string(s) + " is out of range " +
             std::to_string(f.min) + ".." + std::to_string(f.max);
      return false;
    }
    return true;
  }
  std::string u = Upper(s);
  for (size_t i = 0; i < f.names.size(); ++i) {
    if (f.names[i] == u) {
      *out = f.min + static_cast<int>(i);
      return true;
    }
  }
  *why = "bad " + std::string(f.name) + " '" + std::string(s) + "'";
  return false;
}

// Sets the bits of one field; `bits` is indexed by value. Returns false with *why on error.
template <size_t N>
bool ParseField(const FieldSpec& f, std::string_view text, std::bitset<N>* bits, bool* any,
                std::string* why) {
  *any = !text.empty() && (text[0] == '*' || text[0] == '?');
  for (const std::string& item : Split(text, ',')) {
    auto parts = Split(item, '/');
    if (parts.size() > 2 || parts[0].empty()) {
      *why = "bad " + std::string(f.name) + " '" + item + "'";
      return false;
    }
    int lo = f.min;
    int hi = f.max;
    int step = 1;
    const std::string& range = parts[0];
    if (range == "*" || range == "?") {
      if (range == "?" && !f.day) {
        *why = "'?' is only for day of month and day of week";
        return false;
      }
      if (f.max == 7) hi = 6;  // '*' weekdays: 7 would repeat Sunday
    } else {
      auto ends = Split(range, '-');
      if (ends.size() > 2) {
        *why = "bad range '" + range + "' in " + f.name;
        return false;
      }
      if (!Value(f, ends[0], &lo, why)) return false;
      if (ends.size() == 2) {
        if (!Value(f, ends[1], &hi, why)) return false;
        if (hi < lo) {
          *why = std::string(f.name) + " range '" + range + "' runs backwards";
          return false;
        }
      } else if (parts.size() == 1) {
        hi = lo;  // "a" alone; "a/n" means a..max
      }
    }
    if (parts.size() == 2) {
      if (!Number(parts[1], &step) || step < 1 || step > f.max) {
        *why = "bad step '" + parts[1] + "' in " + f.name;
        return false;
      }
    }
    for (int v = lo; v <= hi; v += step) bits->set(static_cast<size_t>(f.max == 7 ? v % 7 : v));
  }
  return true;
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\n\r");
  if (b == s.npos) return "";
  size_t e = s.find_last_not_of(" \t\n\r");
  return std::string(s.substr(b, e - b + 1));
}

}  // namespace

std::optional<CronSchedule> CronSchedule::Parse(std::string_view expr, std::string* why) {
  std::string scratch;
  if (why == nullptr) why = &scratch;
  CronSchedule c;
  c.text_ = Trim(expr);
  std::string rest = c.text_;
  for (const char* prefix : {"CRON_TZ=", "TZ="}) {
    if (rest.rfind(prefix, 0) == 0) {
      size_t sp = rest.find_first_of(" \t");
      std::string tz =
          rest.substr(std::string_view(prefix).size(), sp - std::string_view(prefix).size());
      if (tz != "UTC" && tz != "Etc/UTC" && tz != "GMT" && tz != "Z") {
        *why = "time zone '" + tz + "' is not supported: schedules run in UTC";
        return std::nullopt;
      }
      rest = sp == std::string::npos ? "" : Trim(rest.substr(sp));
      break;
    }
  }
  if (rest.empty()) {
    *why = "empty cron expression";
    return std::nullopt;
  }
  if (rest[0] == '@') {
    std::string word = rest.substr(0, rest.find_first_of(" \t"));
    if (word == "@every") {
      std::string arg = Trim(rest.substr(word.size()));
      std::string dwhy;
      auto d = faults::ParseDuration(arg, &dwhy);
      if (!d) {
        *why = "bad @every duration '" + arg + "': " + dwhy;
        return std::nullopt;
      }
      if (*d < seconds(1)) {
        *why = "@every needs at least 1s";
        return std::nullopt;
      }
      c.every_ = duration_cast<seconds>(*d);
      return c;
    }
    static const std::array<std::pair<const char*, const char*>, 7> kDescriptors = {{
        {"@yearly", "0 0 0 1 1 *"},
        {"@annually", "0 0 0 1 1 *"},
        {"@monthly", "0 0 0 1 * *"},
        {"@weekly", "0 0 0 * * 0"},
        {"@daily", "0 0 0 * * *"},
        {"@midnight", "0 0 0 * * *"},
        {"@hourly", "0 0 * * * *"},
    }};
    bool found = false;
    for (const auto& [name, fields] : kDescriptors) {
      if (rest == name) {
        rest = fields;
        found = true;
      }
    }
    if (!found) {
      *why = "unknown descriptor '" + rest +
             "'; expected @every <duration>, @yearly, @monthly, @weekly, @daily or @hourly";
      return std::nullopt;
    }
  }
  std::vector<std::string> fields;
  std::istringstream in(rest);
  for (std::string f; in >> f;) fields.push_back(f);
  if (fields.size() == 5) fields.insert(fields.begin(), "0");
  if (fields.size() != 6) {
    *why =
        "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), "
        "got " +
        std::to_string(fields.size());
    return std::nullopt;
  }
  bool unused = false;
  const auto& f = Fields();
  if (!ParseField(f[0], fields[0], &c.second_, &unused, why) ||
      !ParseField(f[1], fields[1], &c.minute_, &unused, why) ||
      !ParseField(f[2], fields[2], &c.hour_, &unused, why) ||
      !ParseField(f[3], fields[3], &c.dom_, &c.dom_any_, why) ||
      !ParseField(f[4], fields[4], &c.month_, &unused, why) ||
      !ParseField(f[5], fields[5], &c.dow_, &c.dow_any_, why)) {
    return std::nullopt;
  }
  if (!c.Next(Seconds{}).has_value()) {
    *why = "'" + c.text_ + "' never fires";
    return std::nullopt;
  }
  return c;
}

bool CronSchedule::DayMatches(year_month_day d) const {
  bool dom = dom_[static_cast<unsigned>(d.day())];
  bool dow = dow_[weekday(sys_days(d)).c_encoding()];
  if (dom_any_ || dow_any_) return dom && dow;
  return dom || dow;
}

std::optional<Seconds> CronSchedule::Next(Seconds after) const {
  if (every_.count() > 0) return after + every_;
  const Seconds limit = after + days(366 * 8);
  Seconds t = after + seconds(1);
  while (t < limit) {
    const sys_days day = floor<days>(t);
    const year_month_day ymd(day);
    if (!month_[static_cast<unsigned>(ymd.month())]) {
      auto first = year_month_day(ymd.year() / ymd.month() / 1) + months(1);
      t = sys_days(first);
      continue;
    }
    if (!DayMatches(ymd)) {
      t = day + days(1);
      continue;
    }
    const hh_mm_ss tod(t - day);
    if (!hour_[static_cast<size_t>(tod.hours().count())]) {
      t = day + tod.hours() + hours(1);
      continue;
    }
    if (!minute_[static_cast<size_t>(tod.minutes().count())]) {
      t = day + tod.hours() + tod.minutes() + minutes(1);
      continue;
    }
    if (!second_[static_cast<size_t>(tod.seconds().count())]) {
      t += seconds(1);
      continue;
    }
    return t;
  }
  return std::nullopt;
}

}  // namespace faultline::controller
