// vm-image / vmm image: import, list, delete, export golden images. An import waits
// for its operation (a progress bar on a terminal), then shows the image.
#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/lib/output.h"

namespace xenctl::client {
namespace {

class ImageCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.require_subcommand(1);
    auto sub = [&](const char* name, const char* summary) { return addSubcommand(app, name, summary); };
    import_ = sub("import", "Fetch, verify and unpack an image into a golden base volume");
    import_->add_option("NAME", args_.name, "Image name (also its base volume's)")->type_name("")->required();
    import_->add_option("URI", args_.uri, "file://, http://, https:// or ftp:// URI of a tar/cpio archive or raw ext4")
        ->type_name("")
        ->required();
    import_->add_option("--sha256", args_.sha256, "Expected SHA-256 (default: from SHA256SUMS beside the image)")
        ->type_name("HEX");
    import_->add_flag("--allow-unsigned", allow_unsigned_,
                      "Accept an image without a signature, where the daemon's source for the URI allows it");
    import_->add_option("--pool", args_.pool, "Storage pool (default: the daemon's first pool)")->type_name("POOL");
    addMutationOptions(*import_, m_);

    list_ = sub("list", "List golden images");

    delete_ = sub("delete", "Delete an image and its base volume (refused while clones exist)");
    delete_->add_option("NAME", args_.name, "Image")->type_name("")->required();
    addMutationOptions(*delete_, m_);

    export_ = sub("export", "Pack a Dom0 directory or a volume into an archive and store it at a URI");
    export_->add_option("SOURCE", export_args_.source, "An absolute directory, or vol:POOL/NAME")
        ->type_name("")
        ->required();
    export_->add_option("URI", export_args_.uri, "file://, ftp:// or http(s):// (PUT) destination")
        ->type_name("")
        ->required();
    export_->add_option("--format", export_args_.format, "cpio.gz (default, as the paper) or tar.zst")
        ->type_name("FORMAT");
    addMutationOptions(*export_, m_);
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    Client& cl = **c;
    if (list_->parsed()) {
      auto is = cl.listImages();
      if (!is.ok()) return s.fail(is.status());
      s.json() ? s.printJson(toJson(*is)) : s.print(imageTable(*is));
      return kExitOk;
    }
    args_.request_id = Session::requestId(m_);
    if (import_->parsed()) {
      // Without --allow-unsigned the policy of the URI's source in the
      // daemon's config applies; with it, the daemon decides whether the
      // source may be lowered.
      if (allow_unsigned_) args_.policy = "none";
      return s.finishMutation(cl.importImage(args_), m_, [&s, name = args_.name](const Operation&) -> int {
        Result<Client*> c = s.client();
        if (!c.ok()) return s.fail(c.status());
        auto is = (*c)->listImages();
        if (!is.ok()) return s.fail(is.status());
        for (const Image& i : *is) {
          if (i.name != name) continue;
          s.json() ? s.printJson(toJson(i)) : s.print(imageTable({i}));
          return kExitOk;
        }
        return s.fail(absl::NotFoundError(absl::StrCat("image '", name, "' is gone (deleted meanwhile?)")));
      });
    }
    if (export_->parsed()) {
      export_args_.request_id = args_.request_id;
      return s.finishMutation(cl.exportImage(export_args_), m_, [&s](const Operation& done) -> int {
        if (s.json())
          s.printJson(toJson(done));
        else
          s.print(absl::StrCat("exported ", done.target, ": ", done.message, "\n"));
        return kExitOk;
      });
    }
    if (delete_->parsed())
      return s.finishMutation(cl.deleteImage(args_.request_id, args_.name), m_, [&s](const Operation& done) -> int {
        if (s.json())
          s.printJson(toJson(done));
        else
          s.print(absl::StrCat("deleted image '", done.target, "'\n"));
        return kExitOk;
      });
    return s.usage("no image command given; run 'vmm image --help'");
  }

 private:
  CLI::App *import_ = nullptr, *list_ = nullptr, *delete_ = nullptr, *export_ = nullptr;
  ImportImageArgs args_;
  ExportImageArgs export_args_;
  bool allow_unsigned_ = false;
  MutationOptions m_;
};

}  // namespace

std::unique_ptr<Command> makeImageCommand() { return std::make_unique<ImageCommand>(); }

}  // namespace xenctl::client
