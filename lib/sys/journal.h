// Structured log records for systemd's journal. Under systemd (stderr
// connected to the journal, JOURNAL_STREAM set) a record goes to the
// journal natively, each field searchable (journalctl XENCTL_METHOD=...);
// elsewhere the caller logs its text line.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace xenctl::sys {

/// True when stderr is the journal (systemd sets JOURNAL_STREAM for a service).
bool stderrIsJournal();

/// Sends MESSAGE=`message` with `priority` (syslog's, 6 = info) and the
/// fields (upper-case names, "XENCTL_IDENTITY"), values as given (newlines
/// included). False when the journal could not take it.
bool sendToJournal(int priority, const std::string& message,
                   const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace xenctl::sys
