"""The render record: a repeated rendering is answered without jinja2, and any change in
what a rendering depends on (the context's values or types, the template's source, the
code) renders afresh. The plan still compares the files on disk with these texts."""

import json
import shutil

import pytest

from direct_lvm import render, spec

PROFILE = "lvm-profile.profile.j2"
CTX = {"vg": "docker", "pool": "thinpool", "threshold": 80, "percent": 20}


def _no_jinja(template, context):
    raise AssertionError(f"rendered {template} with jinja2; expected the record's text")


def test_a_repeat_is_answered_from_the_record(tmp_path, monkeypatch):
    path = str(tmp_path / "rec.json")
    render.remember(path)
    first = render.render(PROFILE, **CTX)
    assert "thin_pool_autoextend_threshold = 80" in first
    render.remember(path)  # a later run: the record is read back from the file
    monkeypatch.setattr(render, "_render", _no_jinja)
    assert render.render(PROFILE, **CTX) == first


def test_without_remember_every_rendering_uses_jinja2(monkeypatch):
    render.forget()
    monkeypatch.setattr(render, "_render", _no_jinja)
    with pytest.raises(AssertionError, match="rendered lvm-profile"):
        render.render(PROFILE, **CTX)


@pytest.mark.parametrize(
    "changed",
    [
        {"threshold": 90},
        {"vg": "docker2"},
    ],
)
def test_a_changed_context_renders_afresh(tmp_path, changed):
    render.remember(str(tmp_path / "rec.json"))
    render.render(PROFILE, **CTX)
    calls = []
    real = render._render

    def counting(template, context):
        calls.append(template)
        return real(template, context)

    render._render, saved = counting, render._render
    try:
        text = render.render(PROFILE, **{**CTX, **changed})
    finally:
        render._render = saved
    assert calls == [PROFILE]
    assert text == real(PROFILE, {**CTX, **changed})


def test_a_changed_type_is_a_different_key():
    """80.0 == 80 and True == 1 in Python, but a filter (lvm_int) refuses the float and
    bool: the record must never answer for them with the int's text."""
    key = render._key(PROFILE, CTX)
    assert render._key(PROFILE, {**CTX, "threshold": 80.0}) != key
    assert render._key(PROFILE, {**CTX, "percent": True}) != render._key(
        PROFILE, {**CTX, "percent": 1}
    )
    render.remember()
    render.render(PROFILE, **CTX)
    with pytest.raises(ValueError, match="must be an integer: 80.0"):
        render.render(PROFILE, **{**CTX, "threshold": 80.0})


def test_list_and_tuple_are_different_keys():
    assert render._canonical(["a"]) != render._canonical(("a",))
    assert render._canonical({"a": [1, (2,)]}) == "{'a': [1, (2,)]}"
    assert render._canonical([True]) != render._canonical([1])


def test_an_object_in_the_context_is_rendered_not_recorded(tmp_path):
    from direct_lvm.spec import Runtime

    render.remember(str(tmp_path / "rec.json"))
    assert render._key(PROFILE, {"x": Runtime.DOCKER_OVERLAY2}) is None
    assert render._key(PROFILE, {"x": {1: "a"}}) is None
    render.render(PROFILE, **{**CTX, "vg": Runtime.DOCKER_OVERLAY2})
    assert not (tmp_path / "rec.json").exists()


def test_a_changed_template_renders_afresh(tmp_path, monkeypatch):
    templates = tmp_path / "templates"
    shutil.copytree(render.templates_dir(), templates)
    monkeypatch.setattr(render, "templates_dir", lambda: templates)
    render.environment.cache_clear()
    try:
        render.remember(str(tmp_path / "rec.json"))
        before = render.render(PROFILE, **CTX)
        source = templates / PROFILE
        source.write_text(source.read_text().replace("activation {", "activation  {"))
        render.environment.cache_clear()
        after = render.render(PROFILE, **CTX)
    finally:
        render.environment.cache_clear()
    assert "activation  {" in after and after != before


def test_changed_code_renders_afresh(tmp_path, monkeypatch):
    render.remember(str(tmp_path / "rec.json"))
    key = render._key(PROFILE, CTX)
    monkeypatch.setattr("direct_lvm.__version__", "9.9.9")
    render._code_identity.cache_clear()
    try:
        assert render._key(PROFILE, CTX) != key
    finally:
        monkeypatch.undo()
        render._code_identity.cache_clear()
    assert render._key(PROFILE, CTX) == key


@pytest.mark.parametrize("content", ["{not json", '{"format": 99, "entries": {}}', "[]"])
def test_a_bad_record_is_an_empty_one(tmp_path, content):
    path = tmp_path / "rec.json"
    path.write_text(content)
    render.remember(str(path))
    assert "threshold = 80" in render.render(PROFILE, **CTX)
    data = json.loads(path.read_text())
    assert data["format"] == render.RECORD_FORMAT and len(data["entries"]) == 1


def test_an_unwritable_record_still_renders(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    render.remember(str(blocker / "rec.json"))  # its directory is a file
    assert "threshold = 80" in render.render(PROFILE, **CTX)


def test_the_record_keeps_the_most_recent(tmp_path, monkeypatch):
    monkeypatch.setattr(render, "RECORD_KEEP", 3)
    path = tmp_path / "rec.json"
    render.remember(str(path))
    for t in range(70, 76):
        render.render(PROFILE, **{**CTX, "threshold": t})
    entries = json.loads(path.read_text())["entries"]
    assert len(entries) == 3
    kept = [f"= {t}\n" in text for t, text in zip(range(73, 76), entries.values())]
    assert kept == [True] * 3


def test_a_fresh_process_answers_from_the_record_without_importing_jinja2(tmp_path, own_python):
    path = str(tmp_path / "rec.json")
    render.remember(path)
    expected = render.render(PROFILE, **CTX)
    child = (
        "import json, sys\n"
        "from direct_lvm import render\n"
        f"render.remember({path!r})\n"
        f"text = render.render({PROFILE!r}, **{CTX!r})\n"
        "print(json.dumps({'text': text, 'jinja2': 'jinja2' in sys.modules}))\n"
    )
    out = own_python(child)
    result = json.loads(out)
    assert result == {"text": expected, "jinja2": False}


def test_plan_reads_the_record_but_never_writes_it(tmp_path, monkeypatch):
    path = tmp_path / "rec.json"
    render.remember(str(path))
    first = render.render(PROFILE, **CTX)
    saved = path.read_bytes()
    render.remember(str(path), write=False)
    assert "threshold = 90" in render.render(PROFILE, **{**CTX, "threshold": 90})  # new
    assert path.read_bytes() == saved
    monkeypatch.setattr(render, "_render", _no_jinja)
    assert render.render(PROFILE, **CTX) == first
    render.remember(str(tmp_path / "absent" / "rec.json"), write=False)
    monkeypatch.undo()
    render.render(PROFILE, **CTX)
    assert not (tmp_path / "absent").exists()


def _profile():
    return render.render(PROFILE, **CTX)


def test_answered_gives_what_the_record_holds_or_starts_jinja2_once(tmp_path, monkeypatch):
    """A run whose renderings are all in the record gets them without jinja2 and starts
    nothing; one missing starts jinja2's import beside the probes (once) and renders
    later. No record in use (render, image-setup): nothing is started."""
    started = []
    monkeypatch.setattr(render, "_prefetch", lambda: started.append(1))
    monkeypatch.setattr(render, "_render", _no_jinja)
    path = str(tmp_path / "rec.json")
    render.forget()
    assert render.answered(_profile) is None and started == []
    render.remember(path)
    assert started == []  # not before the probes start
    assert render.answered(_profile) is None and started == [1]
    assert render.answered(_profile) is None and started == [1]  # once per run
    monkeypatch.undo()
    text = render.render(PROFILE, **CTX)  # kept in the record
    monkeypatch.setattr(render, "_prefetch", lambda: started.append(1))
    monkeypatch.setattr(render, "_render", _no_jinja)
    render.remember(path)
    assert render.answered(_profile) == text and started == [1]
    render.remember(str(tmp_path / "absent.json"), write=False)  # plan on a fresh host
    assert render.answered(_profile) is None and started == [1, 1]
    assert not (tmp_path / "absent.json").exists()


def test_a_first_run_starts_jinja2_early_though_the_configs_parse_is_kept_first(
    tmp_path, monkeypatch
):
    """apply keeps the config's parse in the record (spec.read_mapping) before the probes
    start: the record is no longer empty then, and the run still renders everything."""
    started = []
    monkeypatch.setattr(render, "_prefetch", lambda: started.append(1))
    path = tmp_path / "rec.json"
    render.remember(str(path))
    spec.read_mapping("direct_lvm:\n  devices: [/dev/vdb]\n", "config.yaml")
    assert len(json.loads(path.read_text())["entries"]) == 1  # the parse, kept
    assert render.answered(_profile) is None and started == [1]


def test_a_record_seeded_for_another_layout_still_starts_jinja2(tmp_path, monkeypatch):
    """image-setup's record holds the default layouts: a run of another layout misses
    one rendering and imports jinja2 early, as a first run does."""
    path = str(tmp_path / "rec.json")
    render.remember(path)
    render.render(PROFILE, **CTX)
    started = []
    monkeypatch.setattr(render, "_prefetch", lambda: started.append(1))
    render.remember(path)
    other = dict(CTX, threshold=70)
    assert render.answered(lambda: render.render(PROFILE, **other)) is None and started == [1]


def test_the_early_import_builds_the_one_environment_or_leaves_the_error_to_render(
    monkeypatch,
):
    render.environment.cache_clear()
    render._warm()
    assert render.environment.cache_info().currsize == 1  # render() reuses it

    def broken():
        raise ImportError("no jinja2")

    monkeypatch.setattr(render, "environment", broken)
    render._warm()  # swallowed here; render() raises it in the main thread
    with pytest.raises(ImportError):
        render._render(PROFILE, CTX)


def test_image_setups_seed_answers_a_first_run_of_the_default_layout(monkeypatch):
    """core.seed_record renders what a first run of a layout needs into the record
    (image-setup does it for each thin-pool runtime's defaults): a later run of that
    layout gets every file from it, and starts no jinja2 import."""
    from direct_lvm import core, image
    from direct_lvm.observed import RuntimeState

    specs = [spec.from_mapping({"runtime": r, "devices": [image.SEED_DEVICE]})
             for r in image.seed_runtimes()]  # fmt: skip
    for rt in {core.runtimes.get(s.runtime) for s in specs}:
        monkeypatch.setattr(type(rt), "probe", lambda self, spec, restart: RuntimeState())
    assert core.seed_record(specs) >= 1
    started = []
    monkeypatch.setattr(render, "_prefetch", lambda: started.append(1))
    monkeypatch.setattr(render, "_render", _no_jinja)
    render.remember()  # a later run (render.RECORD: this test's, see conftest)
    mine = spec.from_mapping({"devices": ["/dev/vdb"]})  # another disk, same layout
    files = render.answered(lambda: core.desired_files(mine, RuntimeState()))
    assert files and core.profile_path(mine) in files and started == []


def test_image_setup_seeds_only_the_live_system(tmp_path):
    from direct_lvm import image

    assert image.seed_render_record(tmp_path) == []


def test_a_layout_whose_runtime_refuses_is_left_out_of_the_seed(monkeypatch):
    """image-setup must not fail for a runtime the image does not use: a layout whose
    probe or files raise the runtime's refusal is skipped, the others are rendered."""
    from direct_lvm import core, image
    from direct_lvm.errors import RefusedError
    from direct_lvm.observed import RuntimeState

    specs = [spec.from_mapping({"runtime": r, "devices": [image.SEED_DEVICE]})
             for r in image.seed_runtimes()]  # fmt: skip
    refusing, taking = (core.runtimes.get(s.runtime) for s in specs)

    def refuse(self, spec, restart):
        raise RefusedError("containerd's config.toml sets its own devmapper", "edit it")

    monkeypatch.setattr(type(refusing), "probe", refuse)
    monkeypatch.setattr(type(taking), "probe", lambda self, spec, restart: RuntimeState())
    assert core.seed_record(specs) >= 1  # the other layout's profile
