#pragma once
// Helpers shared by the test suites: temp dirs, running python and the CLI.
#include <QString>
#include <QStringList>
#include <string>
#include <vector>

namespace uce::test {

// Runs a program; returns its exit code, fills stdout/stderr. Timeout in ms.
int run(const QString& program, const QStringList& args, QString* out = nullptr,
        QString* err = nullptr, int timeoutMs = 600000);
// Runs Debian's /usr/bin/python3 with a script given as text.
int python(const QString& script, QString* out = nullptr, QString* err = nullptr);
// Runs the `uce` CLI built in this tree.
int cli(const QStringList& args, QString* out = nullptr, QString* err = nullptr);
// Path to a file in ../shared/data.
QString sharedData(const QString& name);
// Folder for the screenshots GUI tests save (<build>/test-screenshots), created on first use.
QString shotDir();
// Whole file as bytes / writes bytes.
QByteArray readAll(const QString& path);
void writeAll(const QString& path, const QByteArray& data);
// Lines of a text file (e.g. metrics.jsonl).
std::vector<std::string> lines(const QString& path);
// The number after "key": in one JSON line; NaN when the key is absent.
double jsonNumber(const std::string& line, const std::string& key);

}  // namespace uce::test
