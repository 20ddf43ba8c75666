#pragma once

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace faultline::controller {

using Seconds = std::chrono::sys_seconds;

// A cron expression, evaluated in UTC.
//   5 fields: minute hour day-of-month month day-of-week
//   6 fields: second minute hour day-of-month month day-of-week
// Each field: `*`, `?` (day fields), a value, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`, or a
// comma-separated list of those. Months and weekdays also by name (JAN..DEC, SUN..SAT; 7 is
// Sunday too). When both day-of-month and day-of-week are restricted, a day matching either
// fires (as in Vixie cron and robfig/cron, which chaos-mesh uses).
// Descriptors: @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly, and
// `@every <duration>` (at least 1s), which fires that long after the previous activation.
// A `CRON_TZ=` or `TZ=` prefix is accepted for UTC only: this build has no time zone database.
class CronSchedule {
 public:
  // nullopt with *why set on a bad expression (including one that never fires).
  static std::optional<CronSchedule> Parse(std::string_view expr, std::string* why = nullptr);

  // The first activation strictly after `after`; nullopt if there is none within 8 years.
  std::optional<Seconds> Next(Seconds after) const;

  const std::string& text() const { return text_; }
  // Non-zero for `@every`.
  std::chrono::seconds every() const { return every_; }

 private:
  bool DayMatches(std::chrono::year_month_day d) const;

  std::string text_;
  std::chrono::seconds every_{0};
  std::bitset<60> second_, minute_;
  std::bitset<24> hour_;
  std::bitset<32> dom_;    // 1..31
  std::bitset<13> month_;  // 1..12
  std::bitset<7> dow_;     // 0 = Sunday
  bool dom_any_ = false;
  bool dow_any_ = false;
};

}  // namespace faultline::controller
