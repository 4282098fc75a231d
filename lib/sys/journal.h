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

/// sendToJournal to the journal socket at `socket` (tests use their own).
/// The record is the journal's native protocol (systemd's "Native Journal
/// Protocol", spoken directly: libsystemd would map libsystemd, libgcrypt,
/// libgpg-error and libcap into the daemon for it); one that does not fit a
/// datagram goes in a sealed memfd passed alongside.
bool sendToJournalAt(const std::string& socket, int priority, const std::string& message,
                     const std::vector<std::pair<std::string, std::string>>& fields);

/// A record as sendToJournalAt sends it: "NAME=value\n" per field, or for a
/// value with a newline "NAME\n", its size (64-bit little-endian), the
/// value and "\n". MESSAGE first, PRIORITY second.
std::string encodeJournalRecord(int priority, const std::string& message,
                                const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace xenctl::sys
