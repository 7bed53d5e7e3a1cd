-- 0009_chunk_provenance: where each chunk came from in its document, for search results and citations.
--
-- page_start/page_end: the PDF pages the chunk's text is on (1-based; a chunk never spans two pages
-- today, so they are equal, but the range leaves room for formats that pack pages together);
-- section: the heading path ("Setup > Install"), sheet or table name, JSON path or e-mail part;
-- row_start/row_end: the spreadsheet rows (header = row 1) a CSV/XLSX chunk covers. All NULL for
-- plain text and for chunks written before this migration. char_start/char_end (0001) stay the
-- offsets in the document's full text, sections joined by a blank line.
ALTER TABLE chunks ADD COLUMN page_start INTEGER;
ALTER TABLE chunks ADD COLUMN page_end INTEGER;
ALTER TABLE chunks ADD COLUMN section TEXT;
ALTER TABLE chunks ADD COLUMN row_start INTEGER;
ALTER TABLE chunks ADD COLUMN row_end INTEGER;
