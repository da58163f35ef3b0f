/** The version every antrea-ts component reports (antctl version, AntreaAgentInfo, AntreaControllerInfo). */
export const ANTREA_TS_VERSION = 'v0.1.0-antrea-ts';
