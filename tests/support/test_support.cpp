#include "test_support.h"

#include <QDir>
#include <QFile>
#include <QProcess>
#include <cmath>
#include <fstream>

namespace uce::test {

QString shotDir() {
  const QString d = QString(UCE_BINARY_DIR) + "/test-screenshots";
  QDir().mkpath(d);
  return d;
}

int run(const QString& program, const QStringList& args, QString* out, QString* err, int timeoutMs) {
  QProcess p;
  p.start(program, args);
  if (!p.waitForStarted(30000)) {
    if (err) *err = "cannot start " + program;
    return -1;
  }
  p.closeWriteChannel();
  if (!p.waitForFinished(timeoutMs)) {
    p.kill();
    p.waitForFinished();
    if (err) *err = "timed out: " + program;
    return -2;
  }
  if (out) *out = QString::fromUtf8(p.readAllStandardOutput());
  if (err) *err = QString::fromUtf8(p.readAllStandardError());
  if (p.exitStatus() != QProcess::NormalExit) return -3;
  return p.exitCode();
}

int python(const QString& script, QString* out, QString* err) {
  return run(UCE_PYTHON, {"-c", script}, out, err);
}

int cli(const QStringList& args, QString* out, QString* err) { return run(UCE_CLI, args, out, err); }

QString sharedData(const QString& name) { return QString(UCE_SHARED_DIR) + "/data/" + name; }

QByteArray readAll(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  return f.readAll();
}

void writeAll(const QString& path, const QByteArray& data) {
  QFile f(path);
  if (f.open(QIODevice::WriteOnly | QIODevice::Truncate)) f.write(data);
}

std::vector<std::string> lines(const QString& path) {
  std::ifstream in(path.toStdString());
  std::vector<std::string> out;
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

double jsonNumber(const std::string& line, const std::string& key) {
  const auto p = line.find("\"" + key + "\":");
  if (p == std::string::npos) return std::nan("");
  return std::stod(line.substr(p + key.size() + 3));
}

}  // namespace uce::test
