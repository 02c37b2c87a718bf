"""The workspace database's SQLite schema, as the list of migrations that build it.

(The settings schemas of the operations are in `segtui.core.settings`.)
"""

from __future__ import annotations

import re

# Each entry migrates from version i to i + 1; never edit a released entry, append.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE models (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        format_id TEXT NOT NULL,
        source_path TEXT NOT NULL,
        dir TEXT NOT NULL,
        xml_name TEXT NOT NULL,
        checksum TEXT NOT NULL,
        analysis TEXT NOT NULL,
        class_names TEXT NOT NULL,
        optimized_from INTEGER REFERENCES models(id) ON DELETE RESTRICT,
        optimization TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE datasets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('images', 'coco')),
        root TEXT NOT NULL,
        annotations TEXT,
        analysis TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE dataset_images (
        dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        path TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        coco_id INTEGER,
        PRIMARY KEY (dataset_id, idx)
    );
    CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE RESTRICT,
        dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE RESTRICT,
        device TEXT NOT NULL,
        parent_id INTEGER REFERENCES projects(id) ON DELETE SET NULL,
        created_at REAL NOT NULL,
        UNIQUE (model_id, dataset_id, device)
    );
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        project_id INTEGER REFERENCES projects(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('queued', 'running', 'done', 'failed', 'cancelled', 'interrupted')),
        progress REAL NOT NULL DEFAULT 0,
        stage TEXT NOT NULL DEFAULT '',
        eta_s REAL,
        pid INTEGER,
        params TEXT NOT NULL DEFAULT '{}',
        result TEXT,
        error TEXT,
        log_path TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL
    );
    CREATE TABLE results (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX results_project_kind ON results(project_id, kind);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 1 -> 2: the bundled sample, registered once per workspace: its name is the key, so
    # that processes starting together record one registration (see core.sample).
    """
    CREATE TABLE samples (
        name TEXT PRIMARY KEY,
        model_id INTEGER REFERENCES models(id) ON DELETE SET NULL,
        images_dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
        annotated_dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
        registered_at REAL NOT NULL
    );
    """,
    # 2 -> 3: the user's accuracy settings of a model (core.accuracy_settings): only the
    # values the user set, as a JSON object; the detected ones come from the model.
    """
    ALTER TABLE models ADD COLUMN accuracy_settings TEXT NOT NULL DEFAULT '{}';
    """,
]

#: The version a workspace has once every migration ran (SQLite's user_version).
SCHEMA_VERSION = len(MIGRATIONS)

#: The tables the migrations create (a workspace that lacks one was changed from outside).
TABLES: frozenset[str] = frozenset(
    name for script in MIGRATIONS for name in re.findall(r"CREATE TABLE (\w+)", script)
)
