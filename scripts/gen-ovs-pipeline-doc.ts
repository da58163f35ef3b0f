/**
 * Regenerates docs/design/ovs-pipeline.md from the table catalog (src/common/agent/openflow),
 * formatted with the project's prettier settings. test/unit/openflow-pipeline.test.ts fails when the
 * file is out of date.
 *
 * Usage: node scripts/gen-ovs-pipeline-doc.ts
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as prettier from 'prettier';
import { renderPipelineDoc } from '../src/common/agent/openflow/pipeline-doc.ts';

export const PIPELINE_DOC = join(import.meta.dirname, '..', 'docs', 'design', 'ovs-pipeline.md');

/** The document as it should be on disk. */
export async function formattedPipelineDoc(): Promise<string> {
  const config = (await prettier.resolveConfig(PIPELINE_DOC)) ?? {};
  return prettier.format(renderPipelineDoc(), { ...config, filepath: PIPELINE_DOC });
}

if (import.meta.main) {
  writeFileSync(PIPELINE_DOC, await formattedPipelineDoc());
  console.log(`wrote ${PIPELINE_DOC}`);
}
