// uce::removeTree, the folder removal the trainer (old checkpoints), the atlas builder and the
// new-species builder use instead of std::filesystem::remove_all (see remove_tree.h: with
// PyTorch's own LibTorch >= 2.5, remove_all crashed `uce train` on a GPU server). And a check
// that no shipped binary calls remove_all or the recursive directory iterator again.
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>
#include <filesystem>
#include <fstream>

#include "test_support.h"
#include "uce/core/remove_tree.h"

namespace fs = std::filesystem;

namespace {

void touch(const fs::path& p, const std::string& text = "x") {
  std::ofstream(p) << text;
  QVERIFY2(fs::exists(p), p.c_str());
}

}  // namespace

class RemoveTreeTest : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  // A checkpoint-like folder: files, nested folders, an empty folder, hidden names and links.
  // All of it goes; what the links point to stays.
  void removesNestedFoldersButNotWhatLinksPointTo() {
    QTemporaryDir tmp;
    const fs::path root = tmp.path().toStdString();
    const fs::path tree = root / "step-0000004", outside = root / "outside";
    fs::create_directories(tree / "a" / "b" / "c");
    fs::create_directories(tree / "empty");
    fs::create_directories(outside);
    touch(outside / "keep.txt", "precious");
    touch(tree / "model.torch");
    touch(tree / ".hidden");
    touch(tree / "a" / "b" / "c" / "deep.pt");
    for (int i = 0; i < 300; ++i) touch(tree / "a" / ("f" + std::to_string(i)));  // more than one readdir buffer
    fs::create_directory_symlink(outside, tree / "a" / "link-to-folder");
    fs::create_symlink(outside / "keep.txt", tree / "link-to-file");
    fs::create_symlink(root / "nowhere", tree / "dangling");

    std::string why;
    QVERIFY2(uce::removeTree(tree.string(), &why), why.c_str());
    QVERIFY(!fs::exists(fs::symlink_status(tree)));
    QVERIFY(fs::is_directory(outside));
    std::ifstream in(outside / "keep.txt");
    std::string kept;
    in >> kept;
    QCOMPARE(QString::fromStdString(kept), QString("precious"));
  }

  void removesFilesAndLinksAndIgnoresMissingPaths() {
    QTemporaryDir tmp;
    const fs::path root = tmp.path().toStdString();
    touch(root / "file");
    QVERIFY(uce::removeTree((root / "file").string()));
    QVERIFY(!fs::exists(root / "file"));
    fs::create_directories(root / "target");
    fs::create_directory_symlink(root / "target", root / "link");
    QVERIFY(uce::removeTree((root / "link").string()));  // the link, not the folder behind it
    QVERIFY(!fs::exists(fs::symlink_status(root / "link")));
    QVERIFY(fs::is_directory(root / "target"));
    QVERIFY(uce::removeTree((root / "never-there").string()));
    QVERIFY(uce::removeTree(""));
  }

  // A path that cannot be removed: false, and the error names the entry and the reason.
  void failureNamesTheEntry() {
    QTemporaryDir tmp;
    const fs::path root = tmp.path().toStdString();
    touch(root / "plain-file");
    const std::string bad = (root / "plain-file" / "inside").string();
    std::string why;
    QVERIFY(!uce::removeTree(bad, &why));
    QVERIFY2(why.find(bad) == 0, why.c_str());
    QVERIFY2(why.find("Not a directory") != std::string::npos, why.c_str());
    QVERIFY(fs::exists(root / "plain-file"));
  }

  // The shipped programs must not import std::filesystem::remove_all or the recursive
  // iterator from libstdc++: linked against PyTorch's LibTorch, those calls can land in the
  // copy LibTorch exports. (Both were imported before removeTree.)
  void binariesDoNotImportRemoveAll() {
    QStringList binaries = {UCE_CLI};
    const QString gui = QString(UCE_BINARY_DIR) + "/app/uce-atlas";
    if (QFile::exists(gui)) binaries << gui;
    for (const QString& bin : binaries) {
      QString out, err;
      QCOMPARE(uce::test::run("nm", {"-D", "--undefined-only", "-C", bin}, &out, &err), 0);
      QVERIFY2(out.contains("std::filesystem"), qPrintable(bin + ": no std::filesystem imports at all? " + err));
      for (const QString& line : out.split('\n'))
        QVERIFY2(!line.contains("filesystem::remove_all") && !line.contains("recursive_directory_iterator"),
                 qPrintable(bin + " imports " + line.trimmed()));
    }
  }
};

QTEST_GUILESS_MAIN(RemoveTreeTest)
#include "test_remove_tree.moc"
