"""The real ``activity-data`` set: every fact the project holds about it, with its source.

The generator is calibrated on these figures, `hhar data fetch` downloads these files and
`hhar data check` holds a folder to them; nothing else restates them.

Sources: "§n" is a section of the shared real-sample notes (``STATS.md``); §11 holds the
original exercise's own outputs over the whole set. "The book's repository" is
databricks/Spark-The-Definitive-Guide, folder ``data/activity-data``, at `BOOK_COMMIT` (the
folder last changed in aa9e658, 2017-06-30): its git tree gives the files' names and blob ids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

BOOK_REPOSITORY = "databricks/Spark-The-Definitive-Guide"
BOOK_FOLDER = "data/activity-data"
BOOK_COMMIT = "4ba5601eb9b9aed1d01ab79775e3af228216ff6f"

# --- the folder (§2, the book's repository) ---------------------------------------------------

REAL_FILES = 80
TID = "730451297822678341"
"""The Databricks commit id in every name of the folder."""
JOB = "1dda7027-2071-4d73-a0e2-7fb6a91e1d1f"
"""The write job's id in the part files' names."""


def part_name(number: int, tid: str, job: str) -> str:
    """A part file's name as Databricks writes it: ``part-00007-tid-<tid>-<job>-0-c000.json``."""
    return f"part-{number:05d}-tid-{tid}-{job}-0-c000.json"


def committed_marker(part_names: Sequence[str]) -> str:
    """Content of a ``_committed_<tid>`` marker: the part files its commit added."""
    return json.dumps({"added": list(part_names), "removed": []}, separators=(",", ":"))


PART_NAMES: tuple[str, ...] = tuple(part_name(number, TID, JOB) for number in range(REAL_FILES))
SUCCESS_MARKER = "_SUCCESS"
STARTED_MARKER = f"_started_{TID}"
COMMITTED_MARKER = f"_committed_{TID}"
MARKERS: tuple[str, ...] = (COMMITTED_MARKER, STARTED_MARKER, SUCCESS_MARKER)
"""Databricks' commit markers (Spark readers skip names starting with _); the committed one
lists the 80 part files (6,824 bytes), the other two are empty."""
ENTRIES: tuple[str, ...] = (*MARKERS, *PART_NAMES)
"""Every file of the folder: 83 entries, 80 of them .json (§11's inventory)."""

PART_BLOB_IDS: tuple[str, ...] = (
    "9369971f4551c753ac3e262dd8a71bd9c832c01a",
    "b47a6a4d1ac6604f62c363659f94856b9c80c846",
    "33ef1f6150656abb7a6c21f627e15d94ec1cf591",
    "4a60479fd6cfd0d3d4b567e11a4527f4aeed0d31",
    "29667158ea2ed916455cf5e09d841e34ef0f945c",
    "7ed881d6580abbb947ad3f504dde8720bca219ff",
    "b9cec408ce7539d82d7c540ee04d194ba2d5c8cc",
    "59d4600f8ad10030a12c2ac22af8447b068e6458",
    "ba1dfae81be90fe17ecbd2cff1bbfc495e72aab6",
    "1dc930078571b5223c43c5dcc575d2c28af95d6d",
    "55b41b42cec3078b8da2eead9a70fefa638682a2",
    "5c0da5e0e991e32fb20bb5aa7036e7f7a6fb839b",
    "c67d38bd622de8f4a6b2798647f8cf8ef71ba89d",
    "20f88ea1bd920536b56edf64ae153b00fa129d83",
    "86cb5df24df9cabb0b40b5a2a1b08ddc7392166a",
    "1381d9beb15bd30c7c5acc52a793880986e77b2d",
    "6cb9ad66895d2f2096b26c4cbbfbe0c8df45c28b",
    "e26c6bf8569f99db8f62d4e10cec1bf66e64b886",
    "6107cd375c61cfd692c3587955c72ae2663f0423",
    "a4e07c67e963e2269454c02b436529e9997c849c",
    "67ded6ba4db27896fefca6a1e52715ac608fc6f9",
    "830e9d9ff11fd8c5ea5744cdf55fb71631477ad4",
    "93cc2ad81d932d9d841b8e1f28e86a21f0e53490",
    "92f055aff5660a99df22c97e2aea5a67be0e04d3",
    "488e9b0fcc15d0d112af0a5e1ff367a087092024",
    "69aa2af56d3f4e59f940b5deadd046457bfc0c91",
    "63799018cbbac263a0c0a995abddca67e347df7d",
    "bc1ef289a5b5dbaab6c74f6d64f08284031f05ab",
    "a7ba93c02dddacaf86ae5cde10754467e006ea6e",
    "bc74c679ec9c78837657fd459aec90d5cf52f924",
    "384febfad0232536b67bdd15e92a93d29ae06bcd",
    "d0e440164d44f2543f61f500650be2d7a603c7eb",
    "ab6ce48ff80c1223a0c42ca6b7ae7532316c66de",
    "f83fdd8b4b97e916d4677d851f7b1a24628b8cff",
    "231c0d57385c8b3352df27b3a3b52fb5cdc7722f",
    "c87ec0a17e387893f903834e601bb4579eab41ab",
    "fed9a74324644f1f482624d41393136091b484c6",
    "45f081939287e53f453b56d6480ccf05824eebb7",
    "a62f9d7e7328b99e81e6eb3dd044860695097926",
    "2718acac50ae79ad2a170b931f7adaafae330fe9",
    "145cda0ed9827c6dd7c3f58faaac5084eae8595d",
    "3ca07cd9811621968a841ac98dd80b23a2a6243b",
    "33d6f9c0151bd8a769529dbf8b461c26bf5f6855",
    "56dcae294409846d0a0c7e5ace6993fdd39fd06b",
    "9451b9c6ca929402e3bcb69beef9994ac3a40dfa",
    "ae284ccd21b61846ee2952d18eaa8ecd60573996",
    "b9bf95df0aa0667cc9f9dd709e5e77d543e9ed51",
    "1ae8ef92900ac27b9a95d30f8d5f0ee6bb653f94",
    "10bb33712a6f6eb2ed1f94ba02497e086a15c761",
    "8c7e5d0b54afac4bcb2ec325aa7b22c72ac3a7c0",
    "357aeb795e0a722f7788ef9fd171d26f63c79dd4",
    "4e2243273f5f9448bb35f08552543cfed2144b25",
    "d73ae71b69f9907632bd05cfb5102c57002851d8",
    "5bd926d7b45d486eee13b94d3cd92034dbf1d7b1",
    "01136e47ab3dd25639db83733bd048b758a8adf2",
    "0689551acd6f31681a6f13406cae8e9808dbd9d5",
    "fa8b0aaeaff35bf4c41a5bddfc4710636a0cd1d5",
    "24e138c0e6622c4b6ea7702c15bed7ed6dba1b39",
    "73fc88d46bb5e3e8d7e28d2ff9a8150674ab4346",
    "fea1927dd65e9984b63c20ecc4375167eef77843",
    "c054afde23885901eb3526ff7543500c4354af3a",
    "635e09ede62f60ef6279e3bbbb733a53dcf17eb4",
    "0ba5e269d5a5ce6e1b6c0ff47ec89093c8a41296",
    "36f9ffe4af077756bb8390082cb7d5f8121b28ee",
    "24e74b2845239c8fac0d863640840477d2dd40eb",
    "c3a64b053aa1087349a739f7dd5d79a4de56db51",
    "7a043c1b03b75a68a09a5aec47daf899bc0e604e",
    "bef3cf1781c3449a848dc4a163a4546f25e1c231",
    "5ae89f43d078f83edc83caefc0e00da2d513526e",
    "0e0dec031b4908a01249e3da2f1061fe63066211",
    "631820e9892f85769d4b6347b1b76d47c945e6b3",
    "1c4b8af460cb58a5e5ad44882a049de694711a2a",
    "e95f8835835b7a752c44a23f973b82c2fd0d83e7",
    "375d4be91b4f6fd0df066b6b638b858e5d9e1e1c",
    "4440ffa93c2df50b1f323309b902bc856febd30b",
    "f1711e7843650c0e893d5a49f5b487fcbaa83cc2",
    "9bbf8e481b00450bb7225340a5042438776b0edb",
    "3284f254d2c029d2bd107bb249abe6e1bf89fbad",
    "2bf3c9d4a27d367da58da2240eb7cd16d02ac424",
    "bfeb999c41bd2dba002a3ababd33568cb50afc0c",
)
"""The git blob id of each part file, by its number (the book's repository's tree)."""
EMPTY_BLOB_ID = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
BLOB_IDS: dict[str, str] = {
    COMMITTED_MARKER: "426bc0848283331c2b19c56539f6389dd7b7181f",
    STARTED_MARKER: EMPTY_BLOB_ID,
    SUCCESS_MARKER: EMPTY_BLOB_ID,
} | dict(zip(PART_NAMES, PART_BLOB_IDS, strict=True))
"""The git blob id of every entry (`GitBlob`)."""


class GitBlob:
    """The git blob id of a file of `size` bytes (how the book's repository names its
    content), its bytes added block by block."""

    def __init__(self, size: int) -> None:
        self._digest = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)

    def update(self, block: bytes) -> None:
        """The next bytes of the file."""
        self._digest.update(block)

    def hexdigest(self) -> str:
        """The blob id, once every byte was added."""
        return self._digest.hexdigest()


def git_blob_id(data: bytes) -> str:
    """The git blob id of a file's bytes."""
    blob = GitBlob(len(data))
    blob.update(data)
    return blob.hexdigest()


# --- the rows (§11 unless said otherwise) -----------------------------------------------------

REAL_ROWS = 6_240_991
REAL_JSON_BYTES = 1_186_523_176
"""Bytes of the 80 part files together."""
FIRST_FILES_ROWS: tuple[int, ...] = (78_011, 78_012, 78_012, 78_012, 78_012)
"""Rows of the first five files the exercise's stream read, one per trigger (its running count
78,011 / 156,023 / 234,035 / 312,047 / 390,059); which files they were is not known, and no
per-file count is published beyond them."""
MODEL = "nexus4"
DEVICES: tuple[str, ...] = ("nexus4_1", "nexus4_2")
USERS: tuple[str, ...] = tuple("abcdefghi")
"""The nine users (§8)."""

REAL_DEVICE_ACTIVITY_COUNTS: dict[tuple[str, str], int] = {
    ("nexus4_2", "walk"): 534_222,
    ("nexus4_1", "walk"): 526_180,
    ("nexus4_1", "sit"): 502_477,
    ("nexus4_2", "sit"): 482_237,
    ("nexus4_2", "stand"): 466_886,
    ("nexus4_2", "bike"): 464_416,
    ("nexus4_1", "stand"): 443_897,
    ("nexus4_1", "null"): 420_991,
    ("nexus4_1", "stairsup"): 419_926,
    ("nexus4_2", "stairsup"): 416_672,
    ("nexus4_2", "null"): 414_734,
    ("nexus4_1", "bike"): 399_294,
    ("nexus4_1", "stairsdown"): 379_046,
    ("nexus4_2", "stairsdown"): 370_013,
}
"""The Device x gt counts; they add up to the Model x Device counts (nexus4 / nexus4_1
3,091,811, nexus4 / nexus4_2 3,149,180) and to REAL_ROWS."""

REAL_DESCRIBE: dict[str, tuple[float, float]] = {
    "Arrival_Time": (1.424745913733571e12, 4.3717662371714726e7),
    "Creation_Time": (1.424746844881817e18, 4.372975621925285e13),
    "Index": (174536.91224919248, 102085.10343046644),
    "x": (4.796918779024442e-4, 0.452435842800112),
    "y": (-0.00601540958963, 0.45913492830935265),
    "z": (-0.01013356489164, 0.5232216780091502),
}
"""describe() of the full set: column -> (mean, stddev)."""


def device_totals() -> dict[str, int]:
    """Rows per Device (the Model x Device counts: every row's Model is MODEL)."""
    totals = dict.fromkeys(DEVICES, 0)
    for (device, _), count in REAL_DEVICE_ACTIVITY_COUNTS.items():
        totals[device] += count
    return totals


# --- the original release (§9) -----------------------------------------------------------------

UCI_GYROSCOPE_FILE = "Phones_gyroscope.csv"
"""The file of UCI HHAR (dataset 344) whose Nexus 4 rows are the activity-data set (§1)."""
