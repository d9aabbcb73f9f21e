#pragma once
// Helpers shared by the test suites: temp dirs, running python and the CLI.
#include <QString>
#include <QStringList>
#include <string>

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
// Whole file as bytes / writes bytes.
QByteArray readAll(const QString& path);
void writeAll(const QString& path, const QByteArray& data);

}  // namespace uce::test
