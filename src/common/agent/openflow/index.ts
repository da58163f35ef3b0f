/**
 * The agent's OpenFlow pipeline framework: the table catalog (pipeline.ts), features and realized
 * pipelines (framework.ts), cookies (cookie.ts), register/ct fields and marks (fields.ts),
 * immutable builders (builder.ts), the flow store (store.ts) and the bridge client (bridge.ts).
 */
export * from './bridge.ts';
export * from './builder.ts';
export * from './cookie.ts';
export * from './fields.ts';
export * from './framework.ts';
export * from './pipeline.ts';
export { renderPipelineDoc } from './pipeline-doc.ts';
export * from './store.ts';
