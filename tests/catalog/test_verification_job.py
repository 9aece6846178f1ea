"""The verification job against real files under ORCHD_MODELS_DIR."""

from __future__ import annotations

import io

import pytest

from catalog.jobs import verify_model
from catalog.models import CatalogModel, VerificationRun, VerificationStatus
from catalog.services import replace_model, request_verification, run_verification
from catalog.services.files import CHUNK_BYTES, sha256_stream
from catalog.types import ModelSpec
from tests.catalog.conftest import DIGEST_A, digest_of

CONTENT = b"GGUF" + bytes(range(256)) * 64


def verify(model: CatalogModel) -> tuple[VerificationRun, CatalogModel]:
    run = request_verification(model)
    verify_model(str(run.id))
    run.refresh_from_db()
    return run, CatalogModel.objects.get(pk=model.pk)


def test_it_passes_a_file_whose_digest_matches(make_model, model_file):
    # given
    model_file("llama-3-8b", CONTENT)
    model = make_model("llama-3-8b", digest=digest_of(CONTENT))

    # when
    run, entry = verify(model)

    # then
    assert (run.status, run.reason) == (VerificationStatus.PASSED, "digest_match")
    assert run.computed_digest == digest_of(CONTENT)
    assert run.finished_at is not None
    assert entry.verification_status == VerificationStatus.PASSED
    assert entry.verification_checked_at == run.finished_at
    assert entry.last_verified_ms is not None


def test_it_fails_a_file_whose_digest_differs(make_model, model_file):
    model_file("m", CONTENT)
    model = make_model("m", digest=DIGEST_A)

    run, entry = verify(model)

    assert (entry.verification_status, entry.verification_reason) == (VerificationStatus.FAILED, "digest_mismatch")
    assert run.expected_digest == DIGEST_A
    assert run.computed_digest == digest_of(CONTENT)
    assert entry.last_verified_at is None


def test_it_warns_when_there_is_no_expected_digest(make_model, model_file):
    model_file("m", CONTENT)
    model = make_model("m")

    run, entry = verify(model)

    assert (entry.verification_status, entry.verification_reason) == (VerificationStatus.WARNING, "no_expected_digest")
    assert run.computed_digest == digest_of(CONTENT)


def test_it_fails_when_the_file_is_missing(make_model, models_dir):
    model = make_model("m", digest=DIGEST_A)

    _, entry = verify(model)

    assert (entry.verification_status, entry.verification_reason) == (VerificationStatus.FAILED, "file_not_found")


def test_it_hashes_nested_paths_of_ids_with_slashes(make_model, model_file):
    model_file("hf:org/repo/file.gguf", CONTENT)
    model = make_model("hf:org/repo/file.gguf", digest=digest_of(CONTENT))

    _, entry = verify(model)

    assert entry.verification_status == VerificationStatus.PASSED


def test_it_reads_a_file_url_inside_the_models_dir(make_model, models_dir):
    path = models_dir / "elsewhere" / "weights.bin"
    path.parent.mkdir()
    path.write_bytes(CONTENT)
    model = make_model("m", digest=digest_of(CONTENT), source_url=path.as_uri())

    _, entry = verify(model)

    assert entry.verification_status == VerificationStatus.PASSED


def test_it_refuses_a_file_url_outside_the_models_dir(make_model, models_dir, tmp_path):
    # given a real file the server could read, but outside ORCHD_MODELS_DIR
    outside = tmp_path / "secret.bin"
    outside.write_bytes(CONTENT)
    model = make_model("m", digest=digest_of(CONTENT), source_url=outside.as_uri())

    # when
    run, entry = verify(model)

    # then
    assert (entry.verification_status, entry.verification_reason) == (
        VerificationStatus.FAILED,
        "path_outside_models_dir",
    )
    assert run.computed_digest == ""


def test_it_refuses_a_file_url_that_climbs_out_with_dot_dots(make_model, models_dir, tmp_path):
    (tmp_path / "secret.bin").write_bytes(CONTENT)
    model = make_model("m", digest=digest_of(CONTENT), source_url=f"file://{models_dir}/../secret.bin")

    _, entry = verify(model)

    assert entry.verification_reason == "path_outside_models_dir"


def test_it_refuses_a_symlink_that_points_out_of_the_models_dir(make_model, models_dir, tmp_path):
    (tmp_path / "secret.bin").write_bytes(CONTENT)
    (models_dir / "m").symlink_to(tmp_path / "secret.bin")
    model = make_model("m", digest=digest_of(CONTENT))

    _, entry = verify(model)

    assert entry.verification_reason == "path_outside_models_dir"


def test_it_refuses_a_file_url_on_another_host(make_model, models_dir):
    model = make_model("m", digest=DIGEST_A, source_url="file://fileserver/models/m")

    _, entry = verify(model)

    assert entry.verification_status == VerificationStatus.FAILED


def test_it_fails_a_directory_as_not_found(make_model, models_dir):
    (models_dir / "m").mkdir()
    model = make_model("m", digest=DIGEST_A)

    _, entry = verify(model)

    assert entry.verification_reason == "file_not_found"


def test_it_hashes_files_larger_than_a_chunk(make_model, model_file):
    content = b"x" * (3 * CHUNK_BYTES + 17)
    model_file("m", content)
    model = make_model("m", digest=digest_of(content))

    _, entry = verify(model)

    assert entry.verification_status == VerificationStatus.PASSED


def test_it_streams_in_chunks_and_never_reads_the_whole_file():
    class RecordingStream(io.BytesIO):
        def __init__(self, content: bytes) -> None:
            super().__init__(content)
            self.sizes: list[int] = []

        def read(self, size: int | None = -1) -> bytes:
            self.sizes.append(-1 if size is None else size)
            return super().read(size)

    stream = RecordingStream(b"y" * (2 * CHUNK_BYTES + 1))

    assert sha256_stream(stream) == digest_of(b"y" * (2 * CHUNK_BYTES + 1))
    assert stream.sizes == [CHUNK_BYTES] * 4


def test_it_finishes_a_run_once_however_often_the_job_runs(make_model, model_file):
    # given a finished run
    model_file("m", CONTENT)
    model = make_model("m", digest=digest_of(CONTENT))
    run, _ = verify(model)
    finished_at = run.finished_at

    # when the broker delivers the job again
    run_verification(run.id)

    # then nothing changes
    run.refresh_from_db()
    assert run.finished_at == finished_at


def test_it_leaves_the_entry_alone_when_a_newer_request_superseded_the_run(make_model, model_file):
    # given two requests, the older one finishing last
    model_file("m", CONTENT)
    model = make_model("m", digest=digest_of(CONTENT))
    older = request_verification(model)
    newer = request_verification(model)
    run_verification(newer.id)
    CatalogModel.objects.filter(pk="m").update(verification_reason="from-newer")

    # when
    run_verification(older.id)

    # then the older run is recorded, but the entry keeps the newer outcome
    older.refresh_from_db()
    assert older.status == VerificationStatus.PASSED
    assert CatalogModel.objects.get(pk="m").verification_reason == "from-newer"


def test_it_ignores_a_run_whose_entry_changed_digest_meanwhile(make_model, model_file):
    model_file("m", CONTENT)
    model = make_model("m", digest=DIGEST_A)
    run = request_verification(model)
    replace_model(model, ModelSpec(id="m", digest=digest_of(CONTENT)))

    run_verification(run.id)

    assert CatalogModel.objects.get(pk="m").verification_status == VerificationStatus.UNVERIFIED


def test_it_does_nothing_for_an_unknown_run(db):
    assert run_verification("00000000-0000-0000-0000-000000000000") is None


@pytest.mark.parametrize("name", ["m", "sub/m"])
def test_it_never_writes_to_the_model_file(make_model, model_file, name):
    path = model_file(name, CONTENT)
    model = make_model(name, digest=DIGEST_A)

    verify(model)

    assert path.read_bytes() == CONTENT
