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
    import_->add_option("NAME", name_, "Image name (also its base volume's)")->type_name("")->required();
    import_->add_option("URI", uri_, "file://, http://, https:// or ftp:// URI of a tar/cpio archive or raw ext4")
        ->type_name("")
        ->required();
    import_->add_option("--sha256", sha256_, "Expected SHA-256 (default: from SHA256SUMS beside the image)")
        ->type_name("HEX");
    import_->add_flag("--allow-unsigned", allow_unsigned_,
                      "Accept an image without a signature, where the daemon's source for the URI allows it");
    import_->add_option("--pool", pool_, "Storage pool (default: the daemon's first pool)")->type_name("POOL");
    addMutationOptions(*import_, m_);

    list_ = sub("list", "List golden images");

    delete_ = sub("delete", "Delete an image and its base volume (refused while clones exist)");
    delete_->add_option("NAME", name_, "Image")->type_name("")->required();
    addMutationOptions(*delete_, m_);

    export_ = sub("export", "Pack a Dom0 directory or a volume into an archive and store it at a URI");
    export_->add_option("SOURCE", source_, "An absolute directory, or vol:POOL/NAME")
        ->type_name("")
        ->required();
    export_->add_option("URI", export_uri_, "file://, ftp:// or http(s):// (PUT) destination")
        ->type_name("")
        ->required();
    export_->add_option("--format", format_, "cpio.gz (default, as the paper) or tar.zst")
        ->type_name("FORMAT");
    addMutationOptions(*export_, m_);
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    Client& cl = **c;
    using Stub = v1::ImageService::Stub;
    if (list_->parsed()) {
      auto all = cl.callPages(&Stub::ListImages, {}, &v1::ListImagesResponse::mutable_images);
      if (!all.ok()) return s.fail(all.status());
      s.json() ? s.printJson(toJson(*all)) : s.print(imageTable(*all));
      return kExitOk;
    }
    const std::string request_id = Session::requestId(m_);
    if (import_->parsed()) {
      v1::ImportImageRequest req;
      req.set_request_id(request_id);
      req.set_name(name_);
      req.set_uri(uri_);
      req.set_sha256(sha256_);
      req.set_pool(pool_);
      // Without --allow-unsigned the policy of the URI's source in the
      // daemon's config applies; with it, the daemon decides whether the
      // source may be lowered.
      if (allow_unsigned_) req.set_policy(v1::SIGNATURE_POLICY_NONE);
      return s.finishMutation(cl.call(&Stub::ImportImage, req), m_, [&s, name = name_](const v1::Operation&) -> int {
        Result<Client*> c = s.client();
        if (!c.ok()) return s.fail(c.status());
        auto all = (*c)->callPages(&Stub::ListImages, {}, &v1::ListImagesResponse::mutable_images);
        if (!all.ok()) return s.fail(all.status());
        for (const v1::Image& i : *all) {
          if (i.name() != name) continue;
          s.json() ? s.printJson(toJson(i)) : s.print(imageTable(one(i)));
          return kExitOk;
        }
        return s.fail(absl::NotFoundError(absl::StrCat("image '", name, "' is gone (deleted meanwhile?)")));
      });
    }
    if (export_->parsed()) {
      v1::ExportImageRequest req;
      req.set_request_id(request_id);
      req.set_source(source_);
      req.set_uri(export_uri_);
      if (format_.empty() || format_ == "cpio.gz")
        req.set_format(v1::ARCHIVE_FORMAT_CPIO_GZ);
      else if (format_ == "tar.zst")
        req.set_format(v1::ARCHIVE_FORMAT_TAR_ZST);
      else
        return s.usage(absl::StrCat("export format '", format_, "' is unknown; use cpio.gz or tar.zst"));
      return s.finishMutation(cl.call(&Stub::ExportImage, req), m_, [&s](const v1::Operation& done) -> int {
        if (s.json())
          s.printJson(toJson(done));
        else
          s.print(absl::StrCat("exported ", done.target(), ": ", done.message(), "\n"));
        return kExitOk;
      });
    }
    if (delete_->parsed()) {
      v1::DeleteImageRequest req;
      req.set_request_id(request_id);
      req.set_name(name_);
      return s.finishMutation(cl.call(&Stub::DeleteImage, req), m_, [&s](const v1::Operation& done) -> int {
        if (s.json())
          s.printJson(toJson(done));
        else
          s.print(absl::StrCat("deleted image '", done.target(), "'\n"));
        return kExitOk;
      });
    }
    return s.usage("no image command given; run 'vmm image --help'");
  }

 private:
  CLI::App *import_ = nullptr, *list_ = nullptr, *delete_ = nullptr, *export_ = nullptr;
  std::string name_, uri_, sha256_, pool_;    // import, delete
  std::string source_, export_uri_, format_;  // export
  bool allow_unsigned_ = false;
  MutationOptions m_;
};

}  // namespace

std::unique_ptr<Command> makeImageCommand() { return std::make_unique<ImageCommand>(); }

}  // namespace xenctl::client
