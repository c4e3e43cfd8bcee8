"""Settings are typed and checked when they are read: durations, lists of names and sinks
given as text (flags and HHAR_* variables) fail in the same one line as always, at once."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from hhar_stream.options import default_text, describe_settings_error
from hhar_stream.settings import Settings, format_duration


@pytest.mark.parametrize(
    ("text", "duration", "shown"),
    [
        ("1s", dt.timedelta(seconds=1), "1 second"),
        ("10 minutes", dt.timedelta(minutes=10), "10 minutes"),
        ("500ms", dt.timedelta(milliseconds=500), "500 milliseconds"),
        ("2.5s", dt.timedelta(milliseconds=2500), "2500 milliseconds"),
        ("5 MIN", dt.timedelta(minutes=5), "5 minutes"),
        ("1h", dt.timedelta(hours=1), "1 hour"),
    ],
)
def test_durations_take_short_and_spark_spellings(
    text: str, duration: dt.timedelta, shown: str
) -> None:
    settings = Settings(trigger=text)
    assert settings.trigger == duration
    assert format_duration(settings.trigger) == shown  # how Spark takes it
    assert settings.model_dump(mode="json")["trigger"] == shown


@pytest.mark.parametrize("text", ["", "1", "0s", "fast", "1 fortnight", "-1s"])
def test_a_bad_duration_is_one_line_naming_its_setting(text: str) -> None:
    with pytest.raises(ValidationError) as error:
        Settings(watermark=text)
    assert describe_settings_error(error.value) == (
        f"watermark (HHAR_WATERMARK) {text!r} is not a duration such as 1s, 500ms, 10 minutes"
    )


def test_a_bad_duration_in_the_environment_fails_when_settings_are_read(monkeypatch) -> None:
    monkeypatch.setenv("HHAR_WINDOW", "soon")
    with pytest.raises(ValidationError) as error:
        Settings()
    assert describe_settings_error(error.value) == (
        "window (HHAR_WINDOW) 'soon' is not a duration such as 1s, 500ms, 10 minutes"
    )


def test_lists_of_names(monkeypatch) -> None:
    assert Settings(stairs_users=" a, b ,,").stairs_users == ("a", "b")
    monkeypatch.setenv("HHAR_STAIRS_USERS", "c,d")
    assert Settings().stairs_users == ("c", "d")
    with pytest.raises(ValidationError) as error:
        Settings(stairs_users=" , ")
    assert describe_settings_error(error.value) == "stairs_users (HHAR_STAIRS_USERS) names nothing"


def test_sinks_are_kept_in_order_and_checked() -> None:
    assert Settings(sink="console, kafka").sink == ("kafka", "console")
    with pytest.raises(ValidationError) as error:
        Settings(sink="kafka,disk")
    assert describe_settings_error(error.value) == (
        "invalid sink 'disk' (HHAR_SINK): choose any of kafka, memory, console"
    )


def test_other_errors_keep_their_form_beside_ours() -> None:
    with pytest.raises(ValidationError) as error:
        Settings(partitions=0, trigger="soon")
    assert describe_settings_error(error.value) == (
        "trigger (HHAR_TRIGGER) 'soon' is not a duration such as 1s, 500ms, 10 minutes; "
        "invalid setting partitions (HHAR_PARTITIONS): Input should be greater than or equal "
        "to 1"
    )


def test_a_changed_copy_is_validated() -> None:
    settings = Settings().changed(window="30 seconds", stairs_users="a")
    assert settings.window == dt.timedelta(seconds=30) and settings.stairs_users == ("a",)
    with pytest.raises(ValidationError):
        Settings().changed(window="later")


def test_defaults_are_shown_as_they_are_written() -> None:
    assert default_text("trigger") == "1 second"
    assert default_text("stairs_users") == "a,b"
    assert default_text("sink") == "kafka"
    assert default_text("sasl_password") == ""
    assert default_text("source") == ""
