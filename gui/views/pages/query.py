"""Query page: SQL (DuckDB) over a topic's records, once or live (a push query)."""

from __future__ import annotations

import datetime
import decimal
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QFontDatabase, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gui.bridge.query import QueryController, QueryResult
from gui.views.common import button, hbox, make_table, page_header, section
from gui.views.pages import PageSpec

SORT = Qt.ItemDataRole.UserRole + 1
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
           "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
EXAMPLE = ('SELECT key, value, "partition", "offset", "timestamp"\n'
           'FROM "{topic}"\nORDER BY "timestamp" DESC\nLIMIT 100')


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ", timespec="milliseconds")
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class ResultModel(QAbstractTableModel):
    """Rows of a QueryResult; SORT gives numbers for numeric columns, text otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.columns: tuple[tuple[str, str], ...] = ()
        self.rows: list[tuple[Any, ...]] = []
        self._numeric: list[bool] = []

    def set_result(self, result: QueryResult) -> None:
        self.beginResetModel()
        self.columns = result.columns
        self.rows = result.rows
        self._numeric = [t.split("(")[0] in NUMERIC for _, t in result.columns]
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and section < len(self.columns):
            name, kind = self.columns[section]
            if role == Qt.ItemDataRole.DisplayRole:
                return name
            if role == Qt.ItemDataRole.ToolTipRole:
                return f"{name}: {kind}"
            if role == Qt.ItemDataRole.TextAlignmentRole:  # over the cells, as they align
                side = (Qt.AlignmentFlag.AlignRight if self._numeric[section]
                        else Qt.AlignmentFlag.AlignLeft)
                return int(side | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self.rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return _cell(value)
        if role == Qt.ItemDataRole.ToolTipRole:
            text = _cell(value)
            return text if len(text) > 40 else None
        if role == SORT:
            if self._numeric[index.column()]:
                if value is None:
                    return float("-inf")
                return float(value) if isinstance(value, decimal.Decimal | int | float) else 0.0
            return "" if value is None else _cell(value)
        if role == Qt.ItemDataRole.TextAlignmentRole and self._numeric[index.column()]:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class QueryView(QWidget):
    """SQL editor, run / live / cancel / export, progress, and a sortable result table."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.controller = QueryController(session)
        self._topics: list[str] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(8)
        header, self.subtitle = page_header(
            "Query", 'SQL over a topic\'s records, run by DuckDB: columns key, value (JSON), '
            'headers, partition, offset, timestamp. Live re-runs it as records arrive.')
        layout.addWidget(header)

        self.topic = QComboBox()
        self.topic.setObjectName("query_topic")
        self.topic.setMinimumWidth(220)
        self.topic.setToolTip("Insert a query over this topic")
        self.insert_button = button("Insert query", tooltip="Replace the SQL with a starter "
                                    "query over the chosen topic")
        layout.addLayout(hbox(QLabel("Topic"), self.topic, self.insert_button, None))

        split = QSplitter(Qt.Orientation.Vertical)
        self.editor = QPlainTextEdit()
        self.editor.setObjectName("query_sql")
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.editor.setPlaceholderText('SELECT key, count(*) FROM "my-topic" GROUP BY key')
        split.addWidget(self.editor)

        bottom = QWidget()
        bottom_l = QVBoxLayout(bottom)
        bottom_l.setContentsMargins(0, 6, 0, 0)
        self.run_button = button("Run", primary=True, tooltip="Run the query (Ctrl+Enter)")
        self.run_button.setObjectName("query_run")
        self.live = QCheckBox("Live")
        self.live.setObjectName("query_live")
        self.live.setToolTip("Keep the query running: re-run it whenever new records arrive")
        self.cancel_button = button("Cancel", danger=True, tooltip="Stop the running query")
        self.cancel_button.setObjectName("query_cancel")
        self.cancel_button.setEnabled(False)
        self.export_button = button("Export CSV…", tooltip="Save the result as CSV")
        self.export_button.setObjectName("query_export")
        self.export_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setObjectName("query_progress")
        self.progress.setMinimumWidth(220)
        self.progress.setMaximumWidth(320)
        self.progress.setTextVisible(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        bottom_l.addLayout(hbox(self.run_button, self.live, self.cancel_button, self.progress,
                                None, self.export_button))
        self.status = QLabel("")
        self.status.setObjectName("query_status")
        self.status.setWordWrap(True)
        bottom_l.addWidget(self.status)
        bottom_l.addWidget(section("Result"))
        self.model = ResultModel()
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT)
        self.table = make_table(self.proxy, "query_result", fit=False,
                                empty="Run the query (Ctrl+Enter) to see its rows here.")
        self.table.setSelectionMode(self.table.SelectionMode.ExtendedSelection)
        bottom_l.addWidget(self.table, 1)
        split.addWidget(bottom)
        split.setStretchFactor(1, 3)
        split.setSizes([140, 500])
        layout.addWidget(split, 1)

        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.controller.cancel)
        self.export_button.clicked.connect(self._export_dialog)
        self.insert_button.clicked.connect(self._insert_example)
        QShortcut(QKeySequence("Ctrl+Return"), self.editor, self.run)
        self.controller.progress.connect(self._progress)
        self.controller.result.connect(self._result)
        self.controller.failed.connect(self._failed)
        self.controller.running_changed.connect(self._running)
        self.controller.exported.connect(
            lambda path, rows: self.status.setText(f"Exported {rows:,} rows to {path}"))

    # actions -----------------------------------------------------------------------------
    def run(self) -> None:
        live = self.live.isChecked()
        if self.controller.run(self.editor.toPlainText(), live=live):
            self.status.setText("Running live query…" if live else "Running…")
            self.progress.setRange(0, 0)  # busy until the first progress report
            self.progress.setFormat("")

    def _insert_example(self) -> None:
        topic = self.topic.currentText()
        if topic:
            self.editor.setPlainText(EXAMPLE.format(topic=topic.replace('"', '""')))

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export result", "result.csv",
                                              "CSV files (*.csv)")
        if path:
            self.controller.export_csv(path)

    # results -----------------------------------------------------------------------------
    def _progress(self, done: int, total: int, topic: str) -> None:
        if total <= 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
            self.progress.setFormat("up to date")
            self.progress.setToolTip(topic)
            return
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setFormat("%v / %m records")
        self.progress.setToolTip(topic)

    def _result(self, result: QueryResult) -> None:
        header = self.table.horizontalHeader()
        sort_col, order = header.sortIndicatorSection(), header.sortIndicatorOrder()
        same_columns = self.model.columns == result.columns
        self.model.set_result(result)
        if same_columns and 0 <= sort_col < len(result.columns):
            self.proxy.sort(sort_col, order)
        else:
            self.proxy.sort(-1)
            header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
            self.table.resizeColumnsToContents()
            for i in range(len(result.columns)):
                header.resizeSection(i, min(max(header.sectionSize(i), 70), 420))
        self.export_button.setEnabled(bool(result.columns))
        self.table.empty_hint.set_text("The query returned no rows.")
        read = ", ".join(f"{t}: {n:,} records" for t, n in result.records.items())
        more = " (cut: more rows or records than shown)" if result.truncated else ""
        when = datetime.datetime.fromtimestamp(result.at).strftime("%H:%M:%S")
        self.status.setText(f"{len(result.rows):,} rows in {result.elapsed * 1000:.0f} ms "
                            f"at {when}" + (f" — {read}" if read else "") + more)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
            self.progress.setFormat("done")

    def _failed(self, message: str) -> None:
        self.status.setText(message)

    def _running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.live.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if not running and self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("idle")
        if running is False and self.live.isChecked():
            self.progress.setFormat("stopped")

    def on_snapshot(self, snap: Any) -> None:
        names = sorted(t.name for t in getattr(snap, "topics", ()) if not t.name.startswith("__"))
        if names != self._topics:
            current = self.topic.currentText()
            self._topics = names
            self.topic.blockSignals(True)
            self.topic.clear()
            self.topic.addItems(names)
            if current in names:
                self.topic.setCurrentText(current)
            self.topic.blockSignals(False)
            if not self.editor.toPlainText().strip() and names:
                self._insert_example()

    def closeEvent(self, event: Any) -> None:
        self.controller.close()
        super().closeEvent(event)


PAGE = PageSpec("Query", "⌕", 60, QueryView)
