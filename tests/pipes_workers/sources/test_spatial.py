"""Spatial columns (MariaDB GEOMETRY, PostGIS geometry/geography) load as WKB bytes plus a `<column>__srid` companion column,
compared exactly with the source's own ST_AsBinary / ST_SRID."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pyarrow as pa
import pymysql
import pytest
from other_sources_support import load_full

from dataloader_contract.errors import UnsupportedTypeError
from dataloader_contract.request import SourceConfig
from pipes_workers.sources import open_reader

SHAPES = [
    (1, "ST_GeomFromText('POINT(-73.98 40.75)', 4326)"),
    (2, "ST_GeomFromText('POLYGON((0 0, 10 0, 10 10, 0 10, 0 0), (2 2, 3 2, 3 3, 2 2))', 0)"),
    (3, "ST_GeomFromText('MULTILINESTRING((0 0, 1 1), (2 2, 3.5 -1))', 3857)"),
    (4, "ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 2), LINESTRING(0 0, 1 1))', 4326)"),
    (5, "NULL"),
]


def test_geometry_loads_as_wkb_with_its_srid(
    maria_conn: pymysql.connections.Connection, maria_config: SourceConfig, lake_root: Path
) -> None:
    table = f"places_{uuid.uuid4().hex[:6]}"
    with maria_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{table}` (id int PRIMARY KEY, `geo col` GEOMETRY NULL, pt POINT NULL)")
        for i, shape in SHAPES:
            cur.execute(
                f"INSERT INTO `{table}` VALUES ({i}, {shape}, ST_GeomFromText('POINT({i} {i})', 4326))"
            )
        cur.execute(
            f"SELECT id, ST_AsBinary(`geo col`), ST_SRID(`geo col`), ST_AsBinary(pt), ST_SRID(pt) FROM `{table}` ORDER BY id"
        )
        expected = [
            {"id": r[0], "geo col": r[1], "geo col__srid": r[2], "pt": r[3], "pt__srid": r[4]}
            for r in cur.fetchall()
        ]
    delta = load_full(maria_config, table, lake_root, rows=len(SHAPES))
    assert delta.column_names == ["id", "geo col", "geo col__srid", "pt", "pt__srid"]
    assert delta.schema.field("geo col").type == pa.binary()
    assert delta.schema.field("geo col__srid").type == pa.int64()
    assert delta.to_pylist() == expected
    assert expected[0]["geo col__srid"] == 4326 and expected[4]["geo col"] is None


def test_a_column_already_named_like_the_srid_companion_is_refused(
    maria_conn: pymysql.connections.Connection, maria_config: SourceConfig
) -> None:
    table = f"clash_{uuid.uuid4().hex[:6]}"
    with maria_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{table}` (id int, g GEOMETRY, g__srid int)")
    with (
        open_reader(maria_config) as reader,
        pytest.raises(UnsupportedTypeError, match="'g__srid' already exists"),
    ):
        reader.columns(None, table)


@pytest.fixture
def postgis(pg_conn: psycopg.Connection) -> psycopg.Connection:
    """The session's PostgreSQL source database with PostGIS (skips without the extension; fails under CI)."""
    available = pg_conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'").fetchone()
    if available is None:
        reason = "PostGIS is not installed in this PostgreSQL (apt-get install postgresql-15-postgis-3)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    pg_conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return pg_conn


def test_postgis_geometry_and_geography_load_as_wkb_with_their_srid(
    postgis: psycopg.Connection, pg_config: SourceConfig, lake_root: Path
) -> None:
    table = f"pg_places_{uuid.uuid4().hex[:6]}"
    postgis.execute(
        f'CREATE TABLE "{table}" (id int PRIMARY KEY, "any geom" geometry, pt geometry(Point, 3857), g geography)'
    )
    postgis.execute(
        f"""INSERT INTO "{table}" VALUES
        (1, ST_GeomFromText('POLYGON((0 0, 4 0, 4 4, 0 0))', 4326), ST_SetSRID(ST_MakePoint(1, 2), 3857),
            ST_GeogFromText('POINT(-73.98 40.75)')),
        (2, ST_GeomFromText('MULTIPOINT((1 1), (2.5 -3))', 0), NULL, ST_GeogFromText('LINESTRING(0 0, 10 10)')),
        (3, NULL, ST_SetSRID(ST_MakePoint(-5, 6.25), 3857), NULL)"""
    )
    rows = postgis.execute(
        f'SELECT id, ST_AsBinary("any geom"), ST_SRID("any geom"), ST_AsBinary(pt), ST_SRID(pt), ST_AsBinary(g), '
        f'ST_SRID(g) FROM "{table}" ORDER BY id'
    ).fetchall()
    names = ["id", "any geom", "any geom__srid", "pt", "pt__srid", "g", "g__srid"]
    expected = [
        dict(zip(names, (r[0], *(bytes(v) if isinstance(v, memoryview) else v for v in r[1:])), strict=True))
        for r in rows
    ]
    delta = load_full(pg_config, table, lake_root, rows=3)
    assert delta.column_names == names
    assert delta.to_pylist() == expected
    assert expected[0]["g__srid"] == 4326 and expected[1]["any geom__srid"] == 0


SAKILA_ADDRESS = """CREATE TABLE `{name}` (
  address_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT, address VARCHAR(50) NOT NULL,
  address2 VARCHAR(50) DEFAULT NULL, district VARCHAR(20) NOT NULL, city_id SMALLINT UNSIGNED NOT NULL,
  postal_code VARCHAR(10) DEFAULT NULL, phone VARCHAR(20) NOT NULL, location GEOMETRY NOT NULL,
  last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (address_id), SPATIAL KEY idx_location (location))"""


def test_sakila_address_loads_identically(
    maria_conn: pymysql.connections.Connection, maria_config: SourceConfig, lake_root: Path
) -> None:
    """Sakila's `address` (the table the issue found refused), DDL as Sakila ships it, rows in its
    own raw-geometry form (SRID 0 + WKB)."""
    table = f"address_{uuid.uuid4().hex[:6]}"
    with maria_conn.cursor() as cur:
        cur.execute(SAKILA_ADDRESS.format(name=table))
        cur.execute(
            f"INSERT INTO `{table}` VALUES (1, '47 MySakila Drive', NULL, 'Alberta', 300, '', '', "
            "0x0000000001010000003E0A325D63345CC0761FDB8D99D94840, '2014-09-25 22:30:27'), "
            f"(2, '28 MySQL Boulevard', NULL, 'QLD', 576, '', '', "
            "0x0000000001010000008E10D4DF812463404EE08C5022A23BC0, '2014-09-25 22:30:09')"
        )
        cur.execute(
            f"SELECT address_id, address, address2, district, city_id, postal_code, phone, "
            f"ST_AsBinary(location), ST_SRID(location), last_update FROM `{table}` ORDER BY address_id"
        )
        names = ["address_id", "address", "address2", "district", "city_id", "postal_code", "phone",
                 "location", "location__srid", "last_update"]  # fmt: skip
        expected = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    rows = load_full(maria_config, table, lake_root, key="address_id", rows=2)
    loaded = [{**r, "last_update": r["last_update"].replace(tzinfo=None)} for r in rows.to_pylist()]
    assert loaded == expected
